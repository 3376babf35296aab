"""The terminal output of every command: one console for results, one for errors and progress, the
progress bars (steps, and bytes for downloads) and the tables."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn, TransferSpeedColumn)
from rich.table import Table

console = Console(stderr=False)
err_console = Console(stderr=True)


def progress_bar(*, transient: bool = False) -> Progress:
    """A bar counting items (utterances, steps, files) on stderr."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=transient)


def bytes_bar(*, transient: bool = False) -> Progress:
    """A bar counting bytes (downloads, hashing) with the transfer speed, on stderr."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=err_console, transient=transient)


def table(title: str, columns, **column_options) -> Table:
    t = Table(title=title)
    for col in columns:
        t.add_column(col, **column_options)
    return t
