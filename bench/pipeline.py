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


def run(found: Found, pt: PreparedTrack, opts: RunOptions, progress=None) -> Path:
    """Returns the results folder of the scored run, or with ``train_only`` the training run's folder."""
    started = time.time()
    a = found.adapter
    config = a.resolved_config(opts.preset, opts.overrides)
    device = resolve_device(opts.device)
    run_id = opts.run_id or (latest_training_run(pt, a.name, opts.runs_dir) if opts.resume else new_run_id())
    out = run_dir(pt.track.name, a.name, run_id, opts.results_dir or RESULTS_DIR)
    if (out / "summary.json").exists():
        raise BenchError(f"{out} already holds a finished run", hint="choose another --run-id or delete the folder")
    record = {"model": a.name, "model_config": config, "preset": opts.preset, "track": pt.track.name,
              "protocol": pt.protocol.name, "device": device}
    if a.trainable:
        from bench.train import load_checkpoint_model, train

        if opts.train_only and opts.checkpoint:
            raise BenchError("--train-only and --checkpoint exclude each other")
        if opts.checkpoint:
            model, budget, trained = load_checkpoint_model(a, opts.checkpoint)
        else:
            model, budget, trained = train(found, pt, config, run_id=run_id, preset=opts.preset,
                                           overrides=opts.train_overrides or {}, device=device,
                                           resume=opts.resume, runs_dir=opts.runs_dir, progress=progress)
        if opts.train_only:
            from bench.train import training_run_dir

            return training_run_dir(opts.runs_dir, pt, a.name, run_id)
        # what the checkpoint was trained with (a resumed run or --checkpoint: not the command line's)
        record.update(model_config=trained["model_config"], preset=trained["preset"], train=trained["train_config"])
    else:
        if opts.train_only:
            raise BenchError(f"--train-only: {a.name} is not trainable")
        model = a.build(**config)
        budget = {"trained": False, "preset": opts.preset, "steps": None, "epochs": None, "wall_minutes": None,
                  "max_steps": None, "max_minutes": None, "device": device, "hardware": hardware_label(device),
                  "checkpoint": None, "checkpoint_sha256": None}
    from bench.speed import online_speed

    speed_extra = online_speed(a, model) if a.causal else {}
    from bench.score import score

    path = score(found, model, pt, out, run_id=run_id, config=record, budget=budget, preset=record["preset"],
                 jobs=opts.jobs, device=device, progress=progress, speed_extra=speed_extra, started=started)
    if opts.leaderboard:
        from bench import leaderboard

        leaderboard.write(results_dir=opts.results_dir)
    return path
