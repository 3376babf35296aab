"""The one trainer, shared by every trainable adapter.

Data (bench/train/batches.py): clean 16 kHz segments (``segment_seconds``) cut from the prepared train split,
the utterance of each drawn with the track's sampling weights (`bench.data.sampling`; without a rule in
proportion to its length); the noisy input is made on the fly by the protocol with fresh noise every
step. By default (``noise: "torch"``) all of it happens on the training device: the train audio is
resident there, and the batched torch protocol noises the batch; ``noise: "numpy"`` is the numpy
reference protocol in DataLoader workers. Batch ``step`` is a pure function of (seed, step), each item
of (seed, step, item index): which utterances, where the crops start and the noise all follow from it,
which makes ``--resume`` exact without saving any data-loader state. The training loss is read from the
device every ``log_every`` steps, never once a step. Validation uses the frozen noisy valid set (full
utterances), keeps the best checkpoint by validation loss and checks the output's polarity
(``valid_scale``, ``valid_corr``: a negative value logs a warning).

Data-parallel training (bench/train/distributed.py): ``nproc`` processes (or torchrun's), each with its slice
of the global batch ``batch_size``, gradients averaged by DistributedDataParallel; every loss term is a
mean over the items, so the average of the slices' losses is the global batch's. Rank 0 alone validates
and writes checkpoints and the log.

Budgets: ``max_steps`` and/or ``max_minutes`` (wall clock of the training loop, validation
included, summed over resumes); the budget actually used is returned for the results record.
Checkpoints (``last.pt`` every ``checkpoint_every`` steps and at the end, ``best.pt``) hold only
tensors and plain Python values and load with ``torch.load(weights_only=True)``; they go to the
git-ignored ``runs/<track>/<model>/<run-id>/`` with a CSV log of train/valid loss per validation.

Adversarial training (an ``"adversarial"`` block and an adapter's ``discriminator()``): the mechanism is
`bench.train.adversarial`; here it is built beside the model, called from `train_step`, checkpointed
(discriminator and its optimizer) and logged (``d_loss``, ``g_adv``, ``g_fm``; ``train_loss`` stays the
regression loss).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from bench import REPO_ROOT, SAMPLE_RATE
from bench.train import distributed
from bench.adapters.base import Adapter, Found
from bench.train.adversarial import build as build_adversarial
from bench.train.batches import DeviceBatches, SegmentBatches, worker_init
from bench.train.checkpoints import (CHECKPOINT_FIELDS, RESUME_FIELDS, load_checkpoint, load_checkpoint_model,  # noqa: F401
                               save_checkpoint)
from bench.core.console import err_console
from bench.data.prepared import PreparedTrack
from bench.train.resident import ResidentAudio
from bench.core.env import hardware_label
from bench.core.errors import BenchError
from bench.train.losses import build_loss
from bench.core.names import inside, validate_model_name, validate_run_id, validate_track_name

__all__ = ["DEFAULTS", "SegmentBatches", "DeviceBatches", "train", "train_step", "validate", "load_checkpoint",
           "load_checkpoint_model", "save_checkpoint", "training_run_dir", "lr_at"]

if TYPE_CHECKING:   # the trainer reads the run configuration it is given (bench/train/runconfig.py sits above it)
    from bench.train.runconfig import RunConfig

RUNS_DIR = REPO_ROOT / "runs"

DEFAULTS = {
    "loss": {"l1": 1.0, "mrstft": 1.0},
    "optimizer": "adamw",
    "lr": 3e-4,
    "betas": [0.9, 0.999],
    "weight_decay": 0.0,
    "batch_size": 16,
    "segment_seconds": 4.0,
    "max_steps": None,
    "max_minutes": None,
    "warmup_steps": 0,
    "schedule": "cosine",          # cosine decay to lr*min_lr_ratio at max_steps, or "constant"
    "min_lr_ratio": 0.05,
    "grad_clip": 5.0,
    "valid_every": "epoch",        # steps, or "epoch" (one pass over the train audio)
    "checkpoint_every": 100,
    "seed": 0,
    "noise": "torch",              # "torch": data and noise on the training device; "numpy": reference, DataLoader workers
    "shift": 0,                    # shift augmentation (torch path): crop segments by up to this many samples
    "tilt_db": 0.0,                # spectral tilt augmentation (torch path): slope uniform in +-tilt_db dB/octave
    "log_every": 50,               # steps between reads of the training loss (the only waits for the device)
    "num_workers": 1,              # DataLoader workers of the numpy path
    "cpu_threads": "auto",         # torch threads on CPU: "auto" = cores / processes - numpy data workers (>= 1)
    "amp": "auto",                 # bf16 autocast on CUDA when "auto"/true; never on CPU
    "compile": False,
    "adversarial": None,           # a GAN block: discriminator, its optimizer, LSGAN + feature matching (bench/train/adversarial.py)
}

#: the values of options added since, for a checkpoint whose configuration does not have them
LEGACY = {"noise": "numpy", "shift": 0, "log_every": 50, "tilt_db": 0.0}


# ----------------------------------------------------------------------------------------------
def lr_at(step: int, cfg: dict) -> float:
    base = cfg["lr"]
    if cfg["warmup_steps"] and step < cfg["warmup_steps"]:
        return base * (step + 1) / cfg["warmup_steps"]
    if cfg["schedule"] == "cosine" and cfg["max_steps"]:
        t = min(1.0, (step - cfg["warmup_steps"]) / max(1, cfg["max_steps"] - cfg["warmup_steps"]))
        lo = base * cfg["min_lr_ratio"]
        return lo + 0.5 * (base - lo) * (1 + math.cos(math.pi * t))
    return base



def train_step(fwd, model, opt, loss_fn, noisy: torch.Tensor, clean: torch.Tensor, *, lr: float, grad_clip: float,
               amp: bool, adversarial=None) -> torch.Tensor:
    """One optimizer step on a batch already on the device (`fwd`: the model, or its DDP / compiled
    wrapper); returns the (regression) loss, detached, without waiting for the device. `adversarial`:
    ``(clean, output) -> loss to add`` (bench/train/adversarial.py: it updates the discriminator first)."""
    for g in opt.param_groups:
        g["lr"] = lr
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        est = fwd(noisy)
    loss, _ = loss_fn(est.float(), clean)
    total = loss if adversarial is None else loss + adversarial(clean, est.float())
    opt.zero_grad(set_to_none=True)
    total.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return loss.detach()


def validate(adapter: Adapter, model, valid: list[tuple[np.ndarray, np.ndarray]], loss_fn, device: str) -> dict:
    """Loss, SI-SDR and polarity on the frozen noisy valid set: ``valid_scale`` is the mean least-squares
    scale of the output onto the clean target (``<y, c> / <c, c>``: about 1 for a good model, negative for
    one whose output is inverted), ``valid_corr`` the mean correlation of output and target."""
    from bench.train.losses import neg_si_sdr

    model.eval()
    losses, sdrs, scales, corrs = [], [], [], []
    with torch.inference_mode():
        for noisy, clean in valid:
            x = torch.from_numpy(noisy)[None].to(device)
            c = torch.from_numpy(clean)[None].to(device)
            y = adapter.enhance(model, x).float()
            losses.append(float(loss_fn(y, c)[0]))
            sdrs.append(-float(neg_si_sdr(y, c)))
            scales.append(float((y * c).sum() / (c * c).sum().clamp_min(1e-12)))
            yc, cc = y - y.mean(), c - c.mean()
            corrs.append(float((yc * cc).sum() / (yc.norm() * cc.norm()).clamp_min(1e-12)))
    model.train()
    return {"valid_loss": float(np.mean(losses)), "valid_si_sdr": float(np.mean(sdrs)),
            "valid_scale": float(np.mean(scales)), "valid_corr": float(np.mean(corrs))}


def training_run_dir(runs_dir: Path, pt: PreparedTrack, name: str, run_id: str) -> Path:
    """``<runs_dir>/<track>/<model>/<run_id>``, refused when a name would lead outside `runs_dir`."""
    root = Path(runs_dir or RUNS_DIR)
    path = root / validate_track_name(pt.track.name) / validate_model_name(name) / validate_run_id(run_id)
    inside(root, path, "training run folder")
    return path


def train(found: Found, pt: PreparedTrack, run: RunConfig, *, run_id: str, device: str = "cpu", resume: bool = False,
          runs_dir: Path | None = None, progress=None, nproc: int = 1):
    """Train `found.adapter` on the prepared track with the resolved `run` configuration (for ``resume``:
    the configuration of the run's last checkpoint, see `bench.run.pipeline.run_config`); returns (best
    model, budget record, what was trained: ``{"model_config", "train_config", "preset"}``).

    Data-parallel: with ``nproc > 1`` this process is rank 0 of `nproc` it spawns (bench.train.distributed);
    under torchrun every process calls this. Only rank 0 writes (checkpoints, log) and returns the
    model; the other ranks return ``(None, None, None)``."""
    kwargs = dict(found=found, pt=pt, run=run, run_id=run_id, device=device, resume=resume, runs_dir=runs_dir)
    if nproc < 1 or (nproc > 1 and distributed.torchrun_env()):
        raise BenchError(f"--nproc {nproc}: " + ("must be >= 1" if nproc < 1 else "under torchrun the processes are "
                                                 "torchrun's"), hint="--nproc N, or torchrun --nproc-per-node N")
    if nproc > 1:
        _check_batch(run.train_config["batch_size"], nproc)
        return distributed.spawn(nproc, device, _train, kwargs, {"progress": progress})
    joined = distributed.init_from_env(device)
    try:
        return _train(**kwargs, progress=progress)
    finally:
        if joined:
            distributed.leave()


def _check_batch(batch_size: int, world: int) -> None:
    if batch_size % world:
        raise BenchError(f"batch_size {batch_size} (the global batch) is not a multiple of the {world} processes",
                         hint="choose --nproc to divide it, or another batch_size")


def _train(found: Found, pt: PreparedTrack, run: RunConfig, *, run_id: str, device: str, resume: bool,
           runs_dir: Path | None, progress=None):
    adapter = found.adapter
    rank = distributed.current()
    device = distributed.rank_device(device, rank)
    run_id = distributed.broadcast_object(run_id, rank)   # under torchrun each process made its own default id
    progress = progress if rank.main else None
    # a checkpoint of the trainer before these options resumes as it was trained: numpy noise, no shift
    model_config, cfg, preset = run.model_config, {**LEGACY, **run.train_config}, run.preset
    if cfg["noise"] not in ("torch", "numpy"):
        raise BenchError(f"training option noise={cfg['noise']!r}: choose torch or numpy")
    _check_batch(cfg["batch_size"], rank.world)
    for option in ("shift", "tilt_db"):
        if cfg["noise"] == "numpy" and cfg[option]:
            raise BenchError(f"the {option} augmentation is implemented on the torch path only",
                             hint=f"train with noise=torch, or {option}=0")
    rdir = training_run_dir(runs_dir, pt, adapter.name, run_id)
    last_path, best_path = rdir / "last.pt", rdir / "best.pt"
    if resume:
        if not last_path.exists():
            raise BenchError(f"nothing to resume: {last_path} does not exist", hint="check --run-id")
        ck = load_checkpoint(last_path)
        missing = [k for k in RESUME_FIELDS if k not in ck]
        if missing:
            raise BenchError(f"{last_path}: cannot resume from it: missing field(s) {', '.join(missing)}")
    else:
        if last_path.exists():
            raise BenchError(f"{rdir} already holds a training run", hint="pass --resume to continue it, or another --run-id")
        ck = None
    workers = cfg["num_workers"] if cfg["noise"] == "numpy" else 0
    if device == "cpu":
        # intra-op threads that compete with the data workers (or the other ranks) for the cores stall each other
        n = cfg["cpu_threads"]
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // rank.world - workers) if n == "auto" else int(n))
    torch.manual_seed(cfg["seed"])
    model = adapter.build(**model_config).to(device)
    # None without an "adversarial" block: then nothing is built and no random number drawn
    adv = build_adversarial(adapter, cfg.get("adversarial"), device, use_amp=device.startswith("cuda") and
                            cfg["amp"] in ("auto", True), seed=cfg["seed"], batch=cfg["batch_size"])
    if rank.rank:   # the same initial weights on every rank; then each its own dropout etc.
        torch.manual_seed(cfg["seed"] * 1_000_003 + rank.rank)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]), weight_decay=cfg["weight_decay"])
    step, elapsed, best, last_valid = 0, 0.0, math.inf, {}
    if ck is not None:
        step, elapsed, best = ck["step"], ck["elapsed"], ck["best_valid"]
        last_valid = {"valid_scale": ck["budget"].get("valid_scale")}
    loss_fn = build_loss(cfg["loss"]).to(device)
    use_amp = device.startswith("cuda") and cfg["amp"] in ("auto", True)

    train_clean = pt.load_split("train")
    valid = [(pt.load_noisy("valid", u), pt.load_clean("valid", u)) for u in pt.utt_ids("valid")] if rank.main else []
    segment = int(round(cfg["segment_seconds"] * SAMPLE_RATE))
    steps_per_epoch = max(1, int(round(sum(len(a) for a in train_clean.values()) / (segment * cfg["batch_size"]))))
    valid_every = steps_per_epoch if cfg["valid_every"] == "epoch" else int(cfg["valid_every"])
    per_rank = cfg["batch_size"] // rank.world
    items = range(rank.rank * per_rank, (rank.rank + 1) * per_rank)   # this rank's slice of the global batch
    if adv:
        adv.items = items
    if cfg["noise"] == "torch":
        audio = ResidentAudio(train_clean, pt.sampling_weights(), device)
        del train_clean
        batches = DeviceBatches(audio, pt.protocol, segment, cfg["seed"], items, shift=int(cfg["shift"]),
                                tilt_db=float(cfg["tilt_db"]))
        next_batch = batches.batch
    else:
        data = SegmentBatches(train_clean, pt.protocol, cfg["batch_size"], segment, cfg["seed"], step,
                              pt.sampling_weights(), items=items)
        loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=workers,
                                             worker_init_fn=worker_init if workers else None,
                                             persistent_workers=False, pin_memory=device.startswith("cuda"))
    if rank.main:
        rdir.mkdir(parents=True, exist_ok=True)
        (rdir / "config.json").write_text(json.dumps({"adapter": adapter.name, "model_config": model_config,
                                                      "train_config": cfg, "preset": preset}, indent=2))
    log_path = rdir / "log.csv"
    max_steps, max_minutes, log_every = cfg["max_steps"], cfg["max_minutes"], int(cfg["log_every"])
    task = progress.add_task(f"train {adapter.name}", total=max_steps or None) if progress else None
    if progress and step:
        progress.update(task, completed=step)
    running, n_running, since = torch.zeros((), device=device), 0, step
    t0 = time.time() - elapsed
    hardware = hardware_label(device, torch.get_num_threads())

    def state(step_now, rngs):
        return {"adapter": adapter.name, "model_config": model_config, "train_config": cfg, "preset": preset,
                "step": step_now, "elapsed": time.time() - t0, "best_valid": best,
                "model": model.state_dict(), "optimizer": opt.state_dict(), "torch_rng": rngs[0]["torch"],
                "cuda_rng": rngs[0]["cuda"], "rank_rng": rngs if rank.active else None, "budget": budget(step_now),
                **(adv.state_dict() if adv else {})}

    def rng_states():
        mine = {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state() if device.startswith("cuda") else None}
        return distributed.gather_objects(mine, rank)

    def budget(step_now):
        return {"trained": True, "preset": preset, "steps": step_now, "epochs": round(step_now / steps_per_epoch, 2),
                "wall_minutes": round((time.time() - t0) / 60, 2), "max_steps": max_steps, "max_minutes": max_minutes,
                "device": device, "hardware": hardware, "checkpoint": None, "checkpoint_sha256": None,
                "valid_scale": last_valid.get("valid_scale")}

    def time_up() -> bool:   # rank 0's clock decides for all ranks
        up = max_minutes is not None and time.time() - t0 >= 60 * max_minutes
        return bool(distributed.broadcast_object(up, rank))

    def mean_loss() -> float:
        """The mean training loss since the last validation (all ranks); one wait for the device."""
        value = float(distributed.mean_over_ranks(running, rank)) / max(1, n_running)
        if not math.isfinite(value):
            raise BenchError(f"training {adapter.name}: loss became {value} between steps {since} and {step}",
                             hint="lower the learning rate or check the model's output scale")
        return value

    model.train()
    if cfg["noise"] == "numpy":
        it = iter(loader)  # creating the iterator draws from torch's RNG: restore the RNG after it
        next_batch = lambda _step: next(it)  # noqa: E731
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if adv:
            adv.load_state_dict(ck)
        mine = ck["rank_rng"][rank.rank] if ck.get("rank_rng") and len(ck["rank_rng"]) == rank.world else \
            {"torch": ck["torch_rng"], "cuda": ck.get("cuda_rng")} if rank.main else None
        if mine is not None:
            torch.set_rng_state(mine["torch"])
            if device.startswith("cuda") and mine.get("cuda") is not None:
                torch.cuda.set_rng_state(mine["cuda"])
    if rank.active:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[torch.cuda.current_device()] if device.startswith("cuda")
                                      else None, static_graph=True)
    else:
        net = model
    fwd = torch.compile(net) if cfg["compile"] else net
    if adv and rank.active:
        adv.distribute(device)
    stop = time_up()
    loop_step, loop_t0 = step, time.time()
    while not (stop or (max_steps is not None and step >= max_steps)):
        noisy, clean = next_batch(step)
        noisy, clean = noisy.to(device, non_blocking=True), clean.to(device, non_blocking=True)
        gan = adv.generator_step(step, lr_at(step, cfg) / cfg["lr"]) if adv and adv.active(step) else None
        loss = train_step(fwd, model, opt, loss_fn, noisy, clean, lr=lr_at(step, cfg), grad_clip=cfg["grad_clip"],
                          amp=use_amp, adversarial=gan)
        step += 1
        running += loss   # no per-step wait for the device: the loss is read every log_every steps
        n_running += 1
        if not rank.active or step % log_every == 0:
            stop = time_up()
        stop = stop or (max_steps is not None and step >= max_steps)
        at_valid, at_checkpoint = step % valid_every == 0 or stop, step % cfg["checkpoint_every"] == 0 or stop
        if progress:
            progress.update(task, completed=step)
        if step % log_every == 0 or at_valid or at_checkpoint:
            loss_now = mean_loss()
            if progress:
                rate = (step - loop_step) / max(1e-9, time.time() - loop_t0)
                progress.update(task, description=f"train {adapter.name} loss {loss_now:.4f} {rate:.2f} step/s")
        if not (at_valid or at_checkpoint):
            continue
        rngs = rng_states()
        adv_means = adv.take_means(lambda t: distributed.mean_over_ranks(t, rank)) if adv and at_valid else {}
        if at_valid and rank.main:
            v = validate(adapter, model, valid, loss_fn, device)
            last_valid = v
            row = {"step": step, "epoch": round(step / steps_per_epoch, 3), "train_loss": round(loss_now, 6),
                   "valid_loss": round(v["valid_loss"], 6), "valid_si_sdr": round(v["valid_si_sdr"], 4),
                   "valid_scale": round(v["valid_scale"], 4), "valid_corr": round(v["valid_corr"], 4),
                   "lr": lr_at(step, cfg), "elapsed_s": round(time.time() - t0, 1)}
            row.update(adv_means)   # adversarial runs: d_loss, g_adv, g_fm since the last row ("" in the warm-up)
            new_file = not log_path.exists()
            with open(log_path, "a", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(row))
                if new_file:
                    w.writeheader()
                w.writerow(row)
            if v["valid_scale"] < 0:
                err_console.print(f"[yellow]warning[/]: {adapter.name} step {step}: the output correlates negatively "
                                  f"with the clean target (valid_scale {v['valid_scale']:.3f}, valid_corr "
                                  f"{v['valid_corr']:.3f}): inverted polarity")
            # a GAN's best checkpoint is chosen among those trained adversarially (past the warm-up)
            if v["valid_loss"] < best and (adv is None or adv.active(step - 1)):
                best = v["valid_loss"]
                save_checkpoint(best_path, state(step, rngs))
        if at_valid:
            running.zero_()
            n_running, since = 0, step
        if at_checkpoint and rank.main:
            save_checkpoint(last_path, state(step, rngs))
    rngs = rng_states()
    if rank.main:
        final = state(step, rngs)
        save_checkpoint(last_path, final)
        if not best_path.exists():
            save_checkpoint(best_path, final)
    distributed.barrier(rank)
    if not rank.main:
        return None, None, None
    return load_checkpoint_model(adapter, best_path)
