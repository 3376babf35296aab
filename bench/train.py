"""The one trainer, shared by every trainable adapter.

Data: clean 16 kHz segments (``segment_seconds``) cut from the prepared train split, the utterance of
each drawn with the track's sampling weights (`bench.data.sampling`; without a rule in proportion to
its length); the noisy
input is made on the fly by the protocol with fresh seeds (stream ``train:<seed>:<step>:<i>``),
so no two steps ever see the same noise. Batch ``step`` is a pure function of (seed, step):
which utterances, where the crops start and the noise all follow from it, which makes
``--resume`` exact without saving any data-loader state. Validation uses the frozen noisy valid
set (full utterances) and keeps the best checkpoint by validation loss.

Budgets: ``max_steps`` and/or ``max_minutes`` (wall clock of the training loop, validation
included, summed over resumes); the budget actually used is returned for the results record.
Checkpoints (``last.pt`` every ``checkpoint_every`` steps and at the end, ``best.pt``) hold only
tensors and plain Python values and load with ``torch.load(weights_only=True)``; they go to the
git-ignored ``runs/<track>/<model>/<run-id>/`` with a CSV log of train/valid loss per epoch.

Adversarial training (an ``"adversarial"`` block and an adapter's ``discriminator()``): the mechanism is
`bench.adversarial`; here it is one call per generator step, the discriminator and its optimizer in the
checkpoints, ``d_loss``/``g_adv``/``g_fm`` columns in the log (``train_loss`` stays the regression loss).
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
from bench.adapters import Adapter, Found
from bench.adversarial import build as build_adversarial
from bench.data.manifest import file_sha256
from bench.data.prepared import PreparedTrack
from bench.env import hardware_label
from bench.errors import BenchError
from bench.losses import build_loss

if TYPE_CHECKING:   # the trainer reads the run configuration it is given (bench/runconfig.py sits above it)
    from bench.runconfig import RunConfig

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
    "num_workers": 1,
    "cpu_threads": "auto",         # torch threads when training on CPU: "auto" = cores - data workers (>= 1)
    "amp": "auto",                 # bf16 autocast on CUDA when "auto"/true; never on CPU
    "compile": False,
    "adversarial": None,           # a GAN block: discriminator, its optimizer, LSGAN + feature matching (bench/adversarial.py)
}


# ----------------------------------------------------------------------------------------------
# data
class SegmentBatches(torch.utils.data.IterableDataset):
    """Infinite stream of (noisy, clean) batches; batch `step` depends only on (seed, step)."""

    def __init__(self, clean: dict[str, np.ndarray], protocol, batch_size: int, segment: int, seed: int, start_step: int,
                 weights: dict[str, float] | None = None):
        super().__init__()
        self.ids = sorted(clean)
        self.audio = [clean[u] for u in self.ids]
        self.lengths = np.array([len(a) for a in self.audio], dtype=np.float64)
        # draw weights: the track's sampling rule (bench.data.sampling), else the lengths (uniform over the audio)
        self.weights = self.lengths if weights is None else np.array([weights[u] for u in self.ids], dtype=np.float64)
        self.protocol, self.batch_size, self.segment = protocol, batch_size, segment
        self.seed, self.start_step = seed, start_step

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        idx = rng.choice(len(self.ids), size=self.batch_size, p=self.weights / self.weights.sum())
        clean = np.zeros((self.batch_size, self.segment), dtype=np.float32)
        noisy = np.zeros_like(clean)
        for i, k in enumerate(idx):
            a = self.audio[k]
            start = int(rng.integers(0, max(1, len(a) - self.segment + 1)))
            seg = a[start:start + self.segment]
            clean[i, :len(seg)] = seg
            noisy[i] = self.protocol.apply(clean[i], f"{self.ids[k]}@{start}", stream=f"train:{self.seed}:{step}:{i}")
        return torch.from_numpy(noisy), torch.from_numpy(clean)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        step = self.start_step + wid
        while True:
            yield self.batch(step)
            step += nw


def _worker_init(_):
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------
# checkpoints
def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, *, mmap: bool = False) -> dict:
    """A checkpoint's dict (weights_only); ``mmap=True`` maps the tensors instead of reading them, for
    reading only its small fields."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise BenchError(f"{path}: checkpoint does not exist") from None
    except Exception as exc:
        raise BenchError(f"{path}: cannot load checkpoint with weights_only=True ({exc.__class__.__name__}: {exc})") from None


def load_checkpoint_model(adapter: Adapter, path: Path):
    """(model with the checkpoint's weights, budget record, what was trained) from a checkpoint file;
    the last is ``{"model_config", "train_config", "preset"}``. For a run's ``best.pt`` the budget is the
    whole run's (read from ``last.pt`` beside it) plus ``best_step``."""
    ck = load_checkpoint(Path(path))
    if ck.get("adapter") != adapter.name:
        raise BenchError(f"{path}: checkpoint is for adapter {ck.get('adapter')!r}, not {adapter.name!r}")
    model = adapter.build(**ck["model_config"])
    model.load_state_dict(ck["model"])
    budget = dict(ck["budget"])
    budget["checkpoint"] = _rel(Path(path))
    budget["checkpoint_sha256"] = file_sha256(Path(path))
    last = Path(path).with_name("last.pt")
    if Path(path).name == "best.pt" and last.exists():
        # the budget used is the whole run's (last.pt), whichever step scored best
        used = load_checkpoint(last, mmap=True)["budget"]
        budget.update({k: used[k] for k in ("steps", "epochs", "wall_minutes", "max_steps", "max_minutes")})
        budget["best_step"] = ck["step"]
    return model, budget, {"model_config": ck["model_config"], "train_config": ck["train_config"],
                           "preset": ck.get("preset")}


def _rel(p: Path) -> str:
    try:
        return p.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(p)


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


def validate(adapter: Adapter, model, valid: list[tuple[np.ndarray, np.ndarray]], loss_fn, device: str) -> dict:
    from bench.losses import neg_si_sdr

    model.eval()
    losses, sdrs = [], []
    with torch.inference_mode():
        for noisy, clean in valid:
            x = torch.from_numpy(noisy)[None].to(device)
            c = torch.from_numpy(clean)[None].to(device)
            y = adapter.enhance(model, x).float()
            losses.append(float(loss_fn(y, c)[0]))
            sdrs.append(-float(neg_si_sdr(y, c)))
    model.train()
    return {"valid_loss": float(np.mean(losses)), "valid_si_sdr": float(np.mean(sdrs))}


def training_run_dir(runs_dir: Path, pt: PreparedTrack, name: str, run_id: str) -> Path:
    return Path(runs_dir or RUNS_DIR) / pt.track.name / name / run_id


def train(found: Found, pt: PreparedTrack, run: RunConfig, *, run_id: str, device: str = "cpu", resume: bool = False,
          runs_dir: Path | None = None, progress=None):
    """Train `found.adapter` on the prepared track with the resolved `run` configuration (for ``resume``:
    the configuration of the run's last checkpoint, see `bench.pipeline.run_config`); returns (best
    model, budget record, what was trained: ``{"model_config", "train_config", "preset"}``)."""
    adapter = found.adapter
    model_config, cfg, preset = run.model_config, dict(run.train_config), run.preset
    rdir = training_run_dir(runs_dir, pt, adapter.name, run_id)
    last_path, best_path = rdir / "last.pt", rdir / "best.pt"
    if resume:
        if not last_path.exists():
            raise BenchError(f"nothing to resume: {last_path} does not exist", hint="check --run-id")
        ck = load_checkpoint(last_path)
    else:
        if last_path.exists():
            raise BenchError(f"{rdir} already holds a training run", hint="pass --resume to continue it, or another --run-id")
        ck = None
    if device == "cpu":
        # intra-op threads that compete with the data workers for the same cores stall each other
        n = cfg["cpu_threads"]
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - cfg["num_workers"]) if n == "auto" else int(n))
    torch.manual_seed(cfg["seed"])
    model = adapter.build(**model_config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]), weight_decay=cfg["weight_decay"])
    step, elapsed, best = 0, 0.0, math.inf
    if ck is not None:
        step, elapsed, best = ck["step"], ck["elapsed"], ck["best_valid"]
    loss_fn = build_loss(cfg["loss"]).to(device)
    use_amp = device.startswith("cuda") and cfg["amp"] in ("auto", True)
    fwd = torch.compile(model) if cfg["compile"] else model
    # None without an "adversarial" block: then nothing is built and no random number drawn
    adv = build_adversarial(adapter, cfg.get("adversarial"), device, use_amp, cfg["seed"])

    train_clean = pt.load_split("train")
    valid = [(pt.load_noisy("valid", u), pt.load_clean("valid", u)) for u in pt.utt_ids("valid")]
    segment = int(round(cfg["segment_seconds"] * SAMPLE_RATE))
    steps_per_epoch = max(1, int(round(sum(len(a) for a in train_clean.values()) / (segment * cfg["batch_size"]))))
    valid_every = steps_per_epoch if cfg["valid_every"] == "epoch" else int(cfg["valid_every"])
    data = SegmentBatches(train_clean, pt.protocol, cfg["batch_size"], segment, cfg["seed"], step, pt.sampling_weights())
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=cfg["num_workers"],
                                         worker_init_fn=_worker_init if cfg["num_workers"] else None,
                                         persistent_workers=False)
    rdir.mkdir(parents=True, exist_ok=True)
    (rdir / "config.json").write_text(json.dumps({"adapter": adapter.name, "model_config": model_config,
                                                  "train_config": cfg, "preset": preset}, indent=2))
    log_path = rdir / "log.csv"
    max_steps, max_minutes = cfg["max_steps"], cfg["max_minutes"]
    task = progress.add_task(f"train {adapter.name}", total=max_steps or None) if progress else None
    if progress and step:
        progress.update(task, completed=step)
    running, n_running = 0.0, 0
    adv_running = {k: [] for k in (adv.COLUMNS if adv else ())}
    t0 = time.time() - elapsed
    hardware = hardware_label(device, torch.get_num_threads())

    def state(step_now):
        return {"adapter": adapter.name, "model_config": model_config, "train_config": cfg, "preset": preset,
                "step": step_now, "elapsed": time.time() - t0, "best_valid": best,
                "model": model.state_dict(), "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state() if device.startswith("cuda") else None,
                "budget": budget(step_now), **(adv.state_dict() if adv else {})}

    def budget(step_now):
        return {"trained": True, "preset": preset, "steps": step_now, "epochs": round(step_now / steps_per_epoch, 2),
                "wall_minutes": round((time.time() - t0) / 60, 2), "max_steps": max_steps, "max_minutes": max_minutes,
                "device": device, "hardware": hardware, "checkpoint": None, "checkpoint_sha256": None}

    def done(step_now):
        return (max_steps is not None and step_now >= max_steps) or \
               (max_minutes is not None and time.time() - t0 >= 60 * max_minutes)

    model.train()
    it = iter(loader)  # creating the iterator draws from torch's RNG: restore the RNG after it
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if adv:
            adv.load_state_dict(ck)
        torch.set_rng_state(ck["torch_rng"])
        if device.startswith("cuda") and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["cuda_rng"])
    while not done(step):
        noisy, clean = next(it)
        noisy, clean = noisy.to(device, non_blocking=True), clean.to(device, non_blocking=True)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            est = fwd(noisy)
        loss, _ = loss_fn(est.float(), clean)
        total = loss
        if adv and adv.active(step):   # discriminator update(s), then the generator's adversarial terms
            extra, logged = adv.step(clean, est.float(), step, lr_at(step, cfg) / cfg["lr"])
            total = loss + extra
            for k, v in logged.items():
                adv_running[k].append(v)
        if not torch.isfinite(total):
            raise BenchError(f"training {adapter.name}: loss became {float(total)} at step {step}",
                             hint="lower the learning rate or check the model's output scale")
        opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        step += 1
        running += loss.item()
        n_running += 1
        if progress:
            rate = step / max(1e-9, time.time() - t0)
            progress.update(task, completed=step,
                            description=f"train {adapter.name} loss {running / n_running:.4f} {rate:.2f} step/s")
        if step % valid_every == 0 or done(step):
            v = validate(adapter, model, valid, loss_fn, device)
            row = {"step": step, "epoch": round(step / steps_per_epoch, 3), "train_loss": round(running / n_running, 6),
                   "valid_loss": round(v["valid_loss"], 6), "valid_si_sdr": round(v["valid_si_sdr"], 4),
                   "lr": lr_at(step, cfg), "elapsed_s": round(time.time() - t0, 1)}
            # adversarial runs: the means since the last row ("" during the warm-up); train_loss is the regression loss
            row.update({k: round(float(np.mean(v)), 6) if v else "" for k, v in adv_running.items()})
            adv_running = {k: [] for k in adv_running}
            new_file = not log_path.exists()
            with open(log_path, "a", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(row))
                if new_file:
                    w.writeheader()
                w.writerow(row)
            running, n_running = 0.0, 0
            # a GAN's best checkpoint is chosen among those trained adversarially (past the warm-up)
            if v["valid_loss"] < best and (adv is None or adv.active(step - 1)):
                best = v["valid_loss"]
                save_checkpoint(best_path, state(step))
        if step % cfg["checkpoint_every"] == 0 or done(step):
            save_checkpoint(last_path, state(step))
    final = state(step)
    save_checkpoint(last_path, final)
    if not best_path.exists():
        save_checkpoint(best_path, final)
    return load_checkpoint_model(adapter, best_path)
