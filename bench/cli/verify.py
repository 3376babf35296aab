"""`bench verify RUN | --all`: re-derive results from the files in the repository (bench/verify/evidence.py);
`bench reproduce RUN`: retrain a run's model from its record and compare the weights
(bench/verify/reproduce.py)."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

from bench.cli.args import add_jobs
from bench.core.errors import BenchError


def cmd_verify(args) -> int:
    from bench.core.console import console, err_console
    from bench.scoring.results import RESULTS_DIR, iter_run_dirs

    mode = "fast" if args.fast else ("reenhance" if args.reenhance else "rescore")
    root = Path(args.results_dir) if args.results_dir else RESULTS_DIR
    if not args.all and not args.runs:
        raise BenchError("bench verify: give run folders, or --all")
    if args.all and not root.is_dir():
        raise BenchError(f"--results-dir {root}: no such folder")
    if args.fast and args.reenhance:
        raise BenchError("--fast and --reenhance exclude each other")
    paths = list(iter_run_dirs(root)) if args.all else [Path(p) for p in args.runs]
    prepared = Path(args.prepared_dir) if args.prepared_dir else None
    bad = 0
    with _verifier(args.jobs, args.fast, cache=not args.no_cache) as verify:
        for p in paths:
            c = verify(p, results_root=root, mode=mode, prepared_root=prepared, reenhance_unshipped=not args.all)
            if c.ok:
                console.print(f"[green]ok[/] {c.path}" + (f" ({'; '.join(c.notes[:3])})" if args.verbose_notes else ""))
            else:
                bad += 1
                for problem in c.problems:
                    err_console.print(f"[red]FAIL[/] {c.path}: {problem}")
    console.print(f"{len(paths) - bad} of {len(paths)} results folders verified ({mode})")
    return 1 if bad else 0


@contextlib.contextmanager
def _verifier(jobs, fast: bool, cache: bool = True):
    """verify(path, ...) -> Check, with the adapters' catalogue read once. ``--fast`` loads neither the scorer
    nor torch, and (`cache`) trusts the summaries derived before from the same bytes; the other modes share one
    metric pool for every folder (started on the first re-scoring)."""
    from bench.adapters.catalogue import catalogue

    adapters = catalogue(cache=cache)
    if fast:
        from bench.scoring.derivations import Derivations
        from bench.verify.files import verify_files

        derivations = Derivations() if cache else None
        yield lambda path, *, results_root, **_: verify_files(path, results_root, adapters, derivations)[1]
        return
    from bench.verify.evidence import verify_run, workers

    with workers(jobs) as pool:
        yield functools.partial(verify_run, jobs=pool, adapters=adapters)


def cmd_reproduce(args) -> int:
    import shutil
    import tempfile

    from bench.core.console import console, progress_bar
    from bench.verify.reproduce import reproduce

    runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tempfile.mkdtemp(prefix="bench-reproduce-"))
    try:
        with progress_bar() as prog:
            res = reproduce(Path(args.run), runs_dir=runs_dir,
                            prepared_root=Path(args.prepared_dir) if args.prepared_dir else None, progress=prog)
    finally:
        if not args.runs_dir:   # our own scratch folder: the weights were compared, nothing to keep
            shutil.rmtree(runs_dir, ignore_errors=True)
    verdict = "[green]identical weights[/]" if res["identical"] else "[yellow]different weights[/]"
    console.print(f"{res['run']}: retrained {res['steps']} steps on {res['hardware']} "
                  f"(recorded: {res['recorded_hardware']}): {verdict}\n"
                  f"  recorded   {res['recorded_weights_sha256']}\n  reproduced {res['reproduced_weights_sha256']}")
    return 0 if res["identical"] else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("verify", help="re-derive results from the files in the repository "
                                             "(hashes; re-score shipped outputs; re-enhance from weights)")
    p.add_argument("runs", nargs="*", help="results folders (results/<track>/<noise>/<model>/<run-id>)")
    p.add_argument("--all", action="store_true", help="every results folder")
    p.add_argument("--fast", action="store_true", help="files and hashes only, no metric computation")
    p.add_argument("--reenhance", action="store_true", help="also re-enhance the test set from the shipped weights (or the "
                   "adapter's code) and compare with the shipped outputs; with --all, the folders that ship them")
    p.add_argument("--results-dir", default=None)
    p.add_argument("--prepared-dir", default=None)
    p.add_argument("--no-cache", action="store_true", help="import every adapter module, and with --fast derive every "
                   "summary again rather than trust .cache/ for the bytes it derived before")
    add_jobs(p)
    p.add_argument("--verbose-notes", action="store_true", help="print the largest differences found")
    p.set_defaults(func=cmd_verify)
    p = subparsers.add_parser("reproduce", help="retrain a run's model from its record to the same steps and "
                                                "compare the weights hash")
    p.add_argument("run", help="the run's home results folder (the one with its weights record)")
    p.add_argument("--runs-dir", default=None, help="where the retraining writes checkpoints (default: a temp dir)")
    p.add_argument("--prepared-dir", default=None)
    p.set_defaults(func=cmd_reproduce)
