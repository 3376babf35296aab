"""The `bench` command line: parses arguments and calls the command modules (each ``register(subparsers)``).
A `BenchError`, an `OSError` (the path and the reason) or a usage error is one message and exit status 2,
never a traceback; a command that finishes with some items failed returns 1."""

from __future__ import annotations

import argparse
import logging
import sys

from bench.cli import check, compare, data, enhance, leaderboard, list_, new, noise, run, verify
from bench.cli.args import print_error
from bench.core.errors import BenchError, os_error_message

#: the command modules, in the order `bench --help` lists their commands (leaderboard.py also registers
#: `retire`, verify.py also `reproduce`)
COMMANDS = (list_, data, noise, run, leaderboard, compare, verify, new, check, enhance)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench", description="vctk-denoise-bench: benchmark for waveform speech denoising")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:   # argparse printed the usage error (status 2), or --help (0)
        return exc.code if isinstance(exc.code, int) else 2
    from rich.logging import RichHandler

    from bench.core.console import err_console

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)])
    try:
        return int(args.func(args) or 0)
    except BenchError as exc:
        error = exc
    except OSError as exc:
        error = os_error_message(exc)
    except RuntimeError as exc:   # libsndfile's errors (a file it cannot open or write) name the file
        if type(exc).__module__ != "soundfile":
            raise
        error = BenchError(f"audio file: {exc}", hint="check the folder's permissions and free space")
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: finished work is kept; run the same command again to resume")
        return 130
    print_error(error)
    return 2


if __name__ == "__main__":
    sys.exit(main())
