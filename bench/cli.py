"""The `bench` command line: it only parses arguments and calls the command modules, each of which
registers its subcommands the same way (``register(subparsers)``); every `BenchError` becomes one
clear message (exit status 2), never a traceback."""

from __future__ import annotations

import argparse
import logging
import sys

from rich.logging import RichHandler

from bench import adapters, check, compare, enhance, evidence, leaderboard, new, noise, pipeline, reproduce
from bench.console import err_console
from bench.data import commands as data_commands
from bench.errors import BenchError

#: the command modules, in the order `bench --help` lists them
COMMANDS = (adapters, data_commands, noise, pipeline, leaderboard, compare, evidence, reproduce, new, check, enhance)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench", description="vctk-denoise-bench: benchmark for waveform speech denoising")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)])
    try:
        return int(args.func(args) or 0)
    except BenchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: finished work is kept; run the same command again to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
