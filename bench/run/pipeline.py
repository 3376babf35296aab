"""`bench run`: prepare data if needed -> train if the model is trainable -> score on the test
split -> write results -> regenerate the leaderboard."""

from __future__ import annotations

import datetime as _dt
import re
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from bench.adapters.base import Found, build_model
from bench.adapters.speed import RTF_SECONDS, measure_rtf, online_speed
from bench.board import leaderboard
from bench.core import env
from bench.core.errors import BenchError
from bench.core.locks import hold_all
from bench.core.names import inside, validate_model_name, validate_run_id, validate_track_name
from bench.core.workers import positive_jobs
from bench.corpora.root import resolve_data_root
from bench.data.prepare import prepare
from bench.data.prepared import PreparedTrack
from bench.protocol import DEFAULT_PROTOCOL
from bench.scoring.results import RESULTS_DIR, run_dir
from bench.scoring.score import score
from bench.scoring.suite import suite
from bench.scoring.weights import ship_weights as write_weights
from bench.train.distributed import env_rank
from bench.train.runconfig import RunConfig, budget_record, check_budget, check_preset
from bench.train.trainer import RUNS_DIR, load_checkpoint, load_checkpoint_model, train, training_run_dir
from bench.verify import evidence


def new_run_id() -> str:
    """UTC time to the second plus a random suffix: unique even for runs started in the same second."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(4)


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
    data_root: str | None = None
    allow_dirty: bool = False  # write to results/ from a tree with uncommitted code changes
    metrics: tuple[str, ...] | None = None   # a subset of every set's metrics (tests; the board shows "–")
    nproc: int = 1            # data-parallel training processes (bench.train.distributed); torchrun's are found by itself


DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:[0-9]+)?)$")


def resolve_device(device: str) -> str:
    """``auto`` (CUDA when there is one, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; anything else, or CUDA
    where there is none, is a `BenchError`."""
    if not isinstance(device, str) or not DEVICE_RE.match(device):
        raise BenchError(f"--device {device!r}: unknown device", hint="valid: auto, cpu, cuda, cuda:N")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"--device {device} requested but CUDA is not available", hint="use --device cpu")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise BenchError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)",
                         hint=f"valid: cuda:0 ... cuda:{torch.cuda.device_count() - 1}")
    return device


def resolve_run_id(opts: RunOptions, pt: PreparedTrack, model_name: str) -> str:
    """The run id, validated: ``opts.run_id``, or by default for ``--resume`` the most recent one with a
    checkpoint under runs/<track>/<model>/, else a new one. The one place the default is set."""
    if opts.run_id is not None or not opts.resume:
        return validate_run_id(opts.run_id if opts.run_id is not None else new_run_id())
    base = Path(opts.runs_dir or RUNS_DIR) / pt.track.name / model_name
    if not (last := sorted(base.glob("*/last.pt"), key=lambda p: p.stat().st_mtime)):
        raise BenchError(f"nothing to resume: no checkpoint under {base}")
    return validate_run_id(last[-1].parent.name)


def run_config(found: Found, pt: PreparedTrack, opts: RunOptions, run_id: str) -> RunConfig:
    """The run's configuration, resolved once: from the command line for a fresh run (the preset is
    validated in every case), from the last checkpoint (plus a new budget) for ``--resume``."""
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


def training_record(pt: PreparedTrack) -> dict:
    rec = pt.track.record(pt.root)
    return {"track": pt.track.name, "split_id": rec["split_id"], "manifest_sha256": rec["manifest_sha256"],
            "protocol": pt.protocol.name, "protocol_sha256": pt.protocol.sha256}


def _refuse_dirty(opts: RunOptions, git: dict | None = None) -> None:
    """A run written into the repository's results/ from uncommitted code is refused (unless allowed): the
    board could not say which code made it."""
    into_repo = Path(opts.results_dir or RESULTS_DIR).resolve() == Path(RESULTS_DIR).resolve()
    if into_repo and opts.leaderboard and not opts.allow_dirty:
        git = git or env.git_state()
        if git["dirty"]:
            raise BenchError(f"uncommitted changes to the code ({', '.join(git['dirty_paths'][:3])}): a run "
                             "written to results/ must name the commit that made it",
                             hint="commit first, or pass --allow-dirty (the board then marks the run dirty)")


def run(found: Found, pt: PreparedTrack, opts: RunOptions, progress=None) -> Path | None:
    """Train (if trainable) on `pt` and score the model on every set of the evaluation suite of
    `pt.track` (bench/scoring/suite.py). Returns the run's home results folder (where its weights are), or
    with ``train_only`` the training run's folder; None in a data-parallel process other than rank 0
    (it trains; rank 0 alone writes and scores). Names are validated before anything is written, the
    output folders must lie inside their roots, and the run's folders are locked (`bench.core.locks`)."""
    a = found.adapter
    validate_model_name(a.name)
    validate_track_name(pt.track.name)
    if not isinstance(opts.nproc, int) or opts.nproc < 1:   # before any folder is made
        raise BenchError(f"--nproc {opts.nproc}: expected an integer >= 1")
    run_id = resolve_run_id(opts, pt, a.name)
    opts = replace(opts, run_id=run_id, jobs=None if opts.jobs is None else positive_jobs(opts.jobs))
    check_budget(opts.train_overrides or {})
    root = Path(opts.results_dir or RESULTS_DIR)
    home_noise = pt.protocol.name if a.trainable else DEFAULT_PROTOCOL
    out = inside(root, run_dir(pt.track.name, home_noise, a.name, run_id, root), "results folder")
    if env_rank() != 0:   # a torchrun rank other than 0: rank 0 holds the locks and alone writes
        return _run(found, pt, opts, progress)
    locks = [] if opts.train_only else [(out, f"results folder {out}")]
    if a.trainable and not opts.checkpoint:
        rdir = training_run_dir(opts.runs_dir, pt, a.name, run_id)
        locks.append((rdir, f"training run folder {rdir}"))
    with hold_all(locks, hint="another `bench run` uses this run id; choose another --run-id or wait for it",
                  remove_empty_folder=True):
        return _run(found, pt, opts, progress)


def _run(found: Found, pt: PreparedTrack, opts: RunOptions, progress=None) -> Path | None:
    started = time.time()
    a = found.adapter
    check_preset(a, opts.preset)
    device = resolve_device(opts.device)
    run_id = opts.run_id   # resolved by `run`
    results = Path(opts.results_dir or RESULTS_DIR)
    home_noise = pt.protocol.name if a.trainable else DEFAULT_PROTOCOL
    home = run_dir(pt.track.name, home_noise, a.name, run_id, results)
    if (home / "summary.json").exists() and not opts.resume:
        raise BenchError(f"{home} already holds a finished run", hint="choose another --run-id or delete the folder")
    if opts.train_only and (opts.checkpoint or not a.trainable):
        raise BenchError("--train-only and --checkpoint exclude each other" if a.trainable
                         else f"--train-only: {a.name} is not trainable")
    provenance = env.git_state()   # the code this run is made with: recorded in every folder, whenever written
    if not opts.train_only:
        _refuse_dirty(opts, provenance)
    rc = run_config(found, pt, opts, run_id)
    training = None
    if a.trainable:
        if opts.checkpoint:
            model, budget, trained = load_checkpoint_model(a, opts.checkpoint)
            rc = RunConfig(a.name, trained["model_config"], trained["preset"], trained["train_config"])
        else:
            model, budget, _ = train(found, pt, rc, run_id=run_id, device=device, resume=opts.resume,
                                     runs_dir=opts.runs_dir, progress=progress, nproc=opts.nproc)
            if model is None:   # a data-parallel rank other than 0
                return None
        if opts.train_only:
            return training_run_dir(opts.runs_dir, pt, a.name, run_id)
        training = training_record(pt)
    else:
        model = build_model(a, rc.model_config)
        budget = budget_record(rc.preset, device, env.hardware_label(device))
    model = model.to("cpu").eval()
    streaming = bool(a.causal and a.streamer(model) is not None)
    evals = suite(pt.track, pt.root, streaming=streaming)
    for p in (ev.prepared for ev in evals if not ev.prepared.is_prepared):   # every set this run scores on
        prepare(p.track, p.protocol, resolve_data_root(opts.data_root, p.track), p.root, jobs=opts.jobs,
                progress=progress)
    weights = ship_weights(found, model, home, evals[0].prepared, results, opts.jobs) if a.trainable else None
    speed = run_speed(a, model)
    record = rc.record(pt.track.name, pt.protocol.name, device)
    for ev in evals:
        out = inside(results, run_dir(ev.track, ev.noise, a.name, run_id, results), "results folder")
        if (out / "summary.json").exists():
            continue   # scored before an interruption
        ship = ev.role == "main" and home_noise == DEFAULT_PROTOCOL
        score(found, model, ev, out, run_id=run_id, config=record, budget=budget, speed=speed, weights=weights,
              training=training, ship_outputs=ship, jobs=opts.jobs, device=device, progress=progress,
              started=started, provenance=provenance,
              metrics=tuple(m for m in ev.metrics if m in opts.metrics) if opts.metrics else None)
    if opts.leaderboard:
        leaderboard.write(results_dir=opts.results_dir)
    return home


def ship_weights(found: Found, model, home: Path, ranked, results: Path, jobs: int | None) -> dict:
    """Write the run's weights into its home folder (bench/scoring/weights.py decides the dtype and whether they
    fit); the record names the file relative to the results root."""
    home.mkdir(parents=True, exist_ok=True)
    rec = write_weights(model, home, adapter=found.adapter.name,
                        fp16_reproduces=lambda t16: evidence.fp16_reproduces(found, model, t16, ranked, jobs))
    if rec["file"]:
        rec["file"] = (home / rec["file"]).relative_to(results).as_posix()
    return rec


def run_speed(adapter, model) -> dict:
    """The run's speed record (measured once, repeated in every folder of the run)."""
    rtf = measure_rtf(adapter, model.to("cpu"), seconds=RTF_SECONDS, threads=1)
    return {"rtf_cpu_1thread": round(rtf, 5), "rtf_input_seconds": RTF_SECONDS, "cpu": env.cpu_model(),
            "causal": adapter.causal, "latency_ms": None, "rtf_stream": None, "stream_chunk_samples": None,
            **(online_speed(adapter, model) if adapter.causal else {})}
