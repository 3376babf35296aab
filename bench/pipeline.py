"""`bench run`: prepare data if needed -> train if the model is trainable -> score on the test
split -> write results -> regenerate the leaderboard."""

from __future__ import annotations

import datetime as _dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from bench.adapters import Found
from bench.data.prepared import PreparedTrack
from bench.env import hardware_label
from bench.errors import BenchError
from bench.results import RESULTS_DIR, run_dir
from bench.runconfig import RunConfig, check_preset

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


@dataclass
class RunOptions:
    preset: str | None = None
    overrides: dict | None = None
    train_overrides: dict | None = None
    run_id: str | None = None
    resume: bool = False
    device: str = "auto"
    jobs: int | None = None
    results_dir: Path | None = None
    runs_dir: Path | None = None
    leaderboard: bool = True
    checkpoint: Path | None = None
    train_only: bool = False  # stop after training (score later with --checkpoint <runs dir>/best.pt)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"--device {device} requested but CUDA is not available")
    return device


def latest_training_run(pt: PreparedTrack, model_name: str, runs_dir: Path | None) -> str:
    """The most recent run id with a checkpoint under runs/<track>/<model>/ (for `--resume` without `--run-id`)."""
    from bench.train import RUNS_DIR

    base = Path(runs_dir or RUNS_DIR) / pt.track.name / model_name
    runs = sorted((p.parent for p in base.glob("*/last.pt")), key=lambda d: (d / "last.pt").stat().st_mtime)
    if not runs:
        raise BenchError(f"nothing to resume: no checkpoint under {base}")
    return runs[-1].name


def run_config(found: Found, pt: PreparedTrack, opts: RunOptions, run_id: str) -> RunConfig:
    """The run's configuration, resolved once: from the command line for a fresh run (the preset is
    validated in every case), from the last checkpoint (plus a new budget) for ``--resume``."""
    from bench.train import load_checkpoint, training_run_dir

    a = found.adapter
    rc = RunConfig.resolve(a, opts.preset, opts.overrides)
    if not a.trainable or opts.checkpoint:   # a given checkpoint brings its own: see `run`
        return rc
    if opts.resume:
        last = training_run_dir(opts.runs_dir, pt, a.name, run_id) / "last.pt"
        if not last.exists():
            raise BenchError(f"nothing to resume: {last} does not exist", hint="check --run-id")
        return RunConfig.from_checkpoint(load_checkpoint(last, mmap=True)).with_budget(opts.train_overrides)
    return RunConfig.resolve(a, opts.preset, opts.overrides, opts.train_overrides, train=True)


def run(found: Found, pt: PreparedTrack, opts: RunOptions, progress=None) -> Path:
    """Returns the results folder of the scored run, or with ``train_only`` the training run's folder."""
    started = time.time()
    a = found.adapter
    check_preset(a, opts.preset)
    device = resolve_device(opts.device)
    run_id = opts.run_id or (latest_training_run(pt, a.name, opts.runs_dir) if opts.resume else new_run_id())
    out = run_dir(pt.track.name, a.name, run_id, opts.results_dir or RESULTS_DIR)
    if (out / "summary.json").exists():
        raise BenchError(f"{out} already holds a finished run", hint="choose another --run-id or delete the folder")
    if opts.train_only and (opts.checkpoint or not a.trainable):
        raise BenchError("--train-only and --checkpoint exclude each other" if a.trainable
                         else f"--train-only: {a.name} is not trainable")
    rc = run_config(found, pt, opts, run_id)
    if a.trainable:
        from bench.train import load_checkpoint_model, train, training_run_dir

        if opts.checkpoint:
            model, budget, trained = load_checkpoint_model(a, opts.checkpoint)
            rc = RunConfig(a.name, trained["model_config"], trained["preset"], trained["train_config"])
        else:
            model, budget, _ = train(found, pt, rc, run_id=run_id, device=device, resume=opts.resume,
                                     runs_dir=opts.runs_dir, progress=progress)
        if opts.train_only:
            return training_run_dir(opts.runs_dir, pt, a.name, run_id)
    else:
        model = a.build(**rc.model_config)
        budget = {"trained": False, "preset": rc.preset, "steps": None, "epochs": None, "wall_minutes": None,
                  "max_steps": None, "max_minutes": None, "device": device, "hardware": hardware_label(device),
                  "checkpoint": None, "checkpoint_sha256": None}
    from bench.score import score
    from bench.speed import online_speed

    speed_extra = online_speed(a, model) if a.causal else {}
    path = score(found, model, pt, out, run_id=run_id, config=rc.record(pt.track.name, pt.protocol.name, device),
                 budget=budget, jobs=opts.jobs, device=device, progress=progress, speed_extra=speed_extra,
                 started=started)
    if opts.leaderboard:
        from bench import leaderboard

        leaderboard.write(results_dir=opts.results_dir)
    return path
