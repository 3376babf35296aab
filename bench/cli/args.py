"""What the commands share: subcommands, argument types, the track and folder options, and how an error is
printed. Nothing heavy is imported here: `bench --help` loads it."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.errors import BenchError


def command(subparsers, name: str, func, **options) -> argparse.ArgumentParser:
    """The parser of subcommand `name`, which runs ``func(args)``."""
    p = subparsers.add_parser(name, **options)
    p.set_defaults(func=func)
    return p


def folder(value: str | None, flag: str, hint: str) -> Path | None:
    """The folder an option names (None when not given); a `BenchError` when it is not an existing folder."""
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        raise BenchError(f"{flag} {path}: " + ("is not a folder" if path.exists() else "does not exist"), hint=hint)
    return path


def positive_int(value: str, *, note: str = "") -> int:
    """argparse type: an integer >= 1."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: must be >= 1{note}")
    return n


def jobs(value: str) -> int:
    """argparse type of ``--jobs``: an integer >= 1 (0 and negatives are refused, not "all cores")."""
    return positive_int(value, note=" (omit --jobs to use all cores)")


def add_jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=jobs, default=None, help="worker processes, >= 1 (default: all cores)")


def add_track(p: argparse.ArgumentParser, positional: bool = False) -> None:
    p.add_argument("track" if positional else "--track", **({"nargs": "?"} if positional else {}),
                   default="vctk-mini", help="track name (default: vctk-mini)")


def add_dirs(p: argparse.ArgumentParser) -> None:
    """``--track``, the folders of the data and ``--protocol``, ``--jobs``."""
    add_track(p)
    p.add_argument("--data-root", default=None,
                   help="folder holding the corpora (else $BENCH_DATA_ROOT, ../shared/data, user cache)")
    p.add_argument("--prepared-dir", default=None, help="prepared audio (else $BENCH_PREPARED_DIR or <repo>/prepared)")
    p.add_argument("--protocol", default=None, help="noising protocol (default: stft-v1)")
    add_jobs(p)


def print_error(error: BaseException | str) -> None:
    """One line on stderr, ``error: <message>`` (a `BenchError` brings its hint), never a traceback."""
    from rich.markup import escape

    from bench.core.console import err_console

    err_console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True, highlight=False)
