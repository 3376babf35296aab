"""`bench leaderboard [--check]`: write (or check) leaderboard.md and site/ from results/ (bench/board/);
`bench retire RUN...`: drop a superseded run's shipped outputs and weights (bench/board/retire.py)."""

from __future__ import annotations

from pathlib import Path

from bench.cli.args import command, folder
from bench.core.errors import BenchError


def cmd_leaderboard(args) -> int:
    from bench.board.leaderboard import check, write
    from bench.board.rows import collect
    from bench.core.console import console, err_console

    results = folder(args.results_dir, "--results-dir",
                     "give the folder holding <track>/<model>/<run-id>/ (default: <repo>/results)")
    out = Path(args.output) if args.output else None
    if args.check:
        ok, diff = check(out, results, cache=not args.no_cache)
        if ok:
            console.print("[green]leaderboard.md and site/ are up to date[/]")
            return 0
        err_console.print(diff)
        err_console.print("[red]leaderboard.md or site/ is out of date or edited by hand[/]: run `bench leaderboard` "
                          "and commit both")
        return 1
    path = write(out, results, cache=not args.no_cache)
    console.print(f"wrote {path} and {path.parent / 'site'}/")
    for p, reason in collect(results, cache=not args.no_cache).refused:
        err_console.print(f"[yellow]refused[/] {p}: {reason}")
    return 0


def cmd_retire(args) -> int:
    from bench.board.retire import retire
    from bench.core.console import console
    from bench.scoring.results import RESULTS_DIR, rel

    root = Path(args.results_dir) if args.results_dir else RESULTS_DIR
    for p in args.runs:
        if not (Path(p) / "summary.json").is_file():
            raise BenchError(f"{p}: not a results folder (no summary.json)")
        for d in retire(Path(p), root):
            console.print(f"retired {rel(d)}")
    return 0


def register(subparsers) -> None:
    p = command(subparsers, "leaderboard", cmd_leaderboard,
                help="regenerate leaderboard.md and site/ from results/ (or --check they are current)")
    p.add_argument("--check", action="store_true", help="exit 1 if leaderboard.md or site/ is out of date")
    p.add_argument("--results-dir", default=None)
    p.add_argument("--output", default=None, help="default: <repo>/leaderboard.md (the page goes to site/ beside it)")
    p.add_argument("--no-cache", action="store_true", help="import every adapter module, derive every summary again "
                   "and draw every image, rather than read what .cache/ keeps by the SHA-256 of its inputs and code")
    p = command(subparsers, "retire", cmd_retire,
                help="drop a superseded run's shipped outputs and weights (its scores and hashes stay)")
    p.add_argument("runs", nargs="+", help="results folders of the run (any set it was scored on)")
    p.add_argument("--results-dir", default=None)
