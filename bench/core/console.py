"""The terminal output of every command: one console for results, one for errors and progress,
and the progress bars (steps, and bytes for downloads)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn, TransferSpeedColumn)

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
