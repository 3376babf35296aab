"""`bench run`: prepare -> train (if trainable) -> score -> results -> leaderboard (bench/run/pipeline.py).
Everything the command line says is checked before anything is prepared, trained or written."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cli.args import add_dirs, command, positive_int
from bench.core.errors import BenchError


def parse_overrides(items: list[str] | None, flag: str = "--set") -> dict:
    """``KEY=VALUE`` items as a dict; a value is JSON where it parses as JSON, else the string."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise BenchError(f"{flag} {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except (json.JSONDecodeError, RecursionError):
            out[k] = v
    return out


def run_options(args, adapter):
    """The checked `RunOptions` of the command line (before anything is prepared)."""
    from bench.adapters.base import build_model, check_model_values
    from bench.core.names import validate_run_id
    from bench.run.pipeline import RunOptions, resolve_device
    from bench.train.runconfig import check_budget, check_preset, check_train_values

    if args.run_id is not None:
        validate_run_id(args.run_id)
    resolve_device(args.device)
    check_preset(adapter, args.preset)
    overrides = parse_overrides(args.set)
    check_model_values(adapter, overrides)
    if overrides:   # the model's own check of the values (e.g. hidden=-3), as one line naming the keys
        build_model(adapter, adapter.resolved_config(args.preset, overrides), overrides)
    train_over = parse_overrides(args.train_set, "--train-set")
    check_train_values(train_over, "--train-set")
    train_over.update({k: v for k, v in (("max_steps", args.max_steps), ("max_minutes", args.max_minutes))
                       if v is not None})
    check_budget(train_over)
    return RunOptions(preset=args.preset, overrides=overrides, train_overrides=train_over,
                      run_id=args.run_id, resume=args.resume, device=args.device, jobs=args.jobs,
                      results_dir=Path(args.results_dir) if args.results_dir else None,
                      runs_dir=Path(args.runs_dir) if args.runs_dir else None,
                      leaderboard=not args.no_leaderboard,
                      checkpoint=Path(args.checkpoint) if args.checkpoint else None,
                      train_only=args.train_only, data_root=args.data_root, allow_dirty=args.allow_dirty,
                      nproc=args.nproc)


def cmd_run(args) -> int:
    from bench.adapters.base import get_adapter
    from bench.cli.data import prepared_track
    from bench.core.console import console, progress_bar
    from bench.run.pipeline import resolve_run_id, run
    from bench.scoring.results import load_run
    from bench.train.distributed import env_rank

    found = get_adapter(args.model)
    opts = run_options(args, found.adapter)
    pt = prepared_track(args, prepare_if_missing=True)
    if not opts.resume:   # named before the run starts; `--resume` without `--run-id` finds its run in `run`
        opts.run_id = resolve_run_id(opts, pt, found.adapter.name)
    main_rank = env_rank() == 0   # under torchrun only rank 0 speaks
    if opts.run_id and main_rank:
        console.print(f"run [bold]{found.adapter.name}[/] on {pt.track.name}, run id {opts.run_id} "
                      f"(if interrupted: the same command with --resume --run-id {opts.run_id})")
    if not main_rank:
        run(found, pt, opts)
        return 0
    with progress_bar() as prog:
        path = run(found, pt, opts, progress=prog)
    if opts.train_only:
        console.print(f"trained: {path}; score it with: bench run --model {found.adapter.name} "
                      f"--track {pt.track.name} --checkpoint {path / 'best.pt'} --run-id {opts.run_id}")
        return 0
    print_summary(load_run(path))
    console.print(f"results: {path}" + ("" if args.no_leaderboard else "; leaderboard.md regenerated"))
    return 0


def print_summary(r) -> None:
    """The run's scores on its ranked set, against the noisy input."""
    from bench.core.console import console, table
    from bench.metrics.registry import METRICS
    from bench.verify.compare import decimals

    t = table(f"{r.model} on {r.track} ({r.summary['counts']['utterances']} test utterances)",
              ("metric", "noisy", r.model, "improvement [95% CI]"), justify="right")
    for m, s in r.summary["metrics"].items():
        nd = decimals(m)
        noisy, mean = ("-" if v is None else f"{v:.{nd}f}" for v in (s["noisy_mean"], s["mean"]))
        delta = "-" if s["delta"] is None else \
            f"{s['delta']:+.{nd}f} [{s['delta_ci_low']:+.{nd}f}, {s['delta_ci_high']:+.{nd}f}]"
        failed = f" ({s['failures']} failed)" if s["failures"] else ""
        t.add_row(METRICS[m].label, noisy, mean + failed, delta)
    console.print(t)
    sp = r.summary["speed"]
    console.print(f"parameters {r.summary['model']['parameters']:,}  RTF (CPU, 1 thread) {sp['rtf_cpu_1thread']:.3f}")


def register(subparsers) -> None:
    p = command(subparsers, "run", cmd_run, help="prepare -> train (if trainable) -> score -> results -> leaderboard")
    p.add_argument("--model", required=True, help="adapter name (see `bench list`)")
    add_dirs(p)
    p.add_argument("--preset", default=None, help="adapter preset, e.g. quick (CPU, minutes) or full (GPU)")
    p.add_argument("--set", nargs="*", default=None, metavar="KEY=VALUE", help="model config overrides")
    p.add_argument("--train-set", nargs="*", default=None, metavar="KEY=VALUE", help="training config overrides")
    p.add_argument("--max-steps", type=int, default=None, help="training budget in optimizer steps (>= 1)")
    p.add_argument("--max-minutes", type=float, default=None, help="training budget in wall-clock minutes (> 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--run-id", default=None,
                   help="run id: letters, digits, '.', '_', '-' (default: UTC timestamp + random suffix)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted training run (--run-id, default: the latest one)")
    p.add_argument("--checkpoint", default=None, help="score this checkpoint instead of training")
    p.add_argument("--results-dir", default=None, help="default: <repo>/results")
    p.add_argument("--runs-dir", default=None, help="checkpoints and logs (default: <repo>/runs, git-ignored)")
    p.add_argument("--no-leaderboard", action="store_true", help="do not regenerate leaderboard.md")
    p.add_argument("--nproc", type=positive_int, default=1, metavar="N",
                   help="train with N data-parallel processes (DistributedDataParallel; gloo on CPU, nccl on CUDA, "
                        "one GPU each); batch_size is the global batch. Or launch with torchrun --nproc-per-node N")
    p.add_argument("--train-only", action="store_true",
                   help="train, keep the checkpoints, do not score (score later with --checkpoint)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="write to results/ although the code has uncommitted changes (the board marks the run)")
