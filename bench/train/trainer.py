"""The one trainer, shared by every trainable adapter: `train` runs a `Trainer` (the loop's state on one
object: setup, resume, steps, validation, checkpoints) in this process or in data-parallel ones (rank 0
alone validates and writes). Batch ``step`` is a pure function of (seed, step), so ``--resume`` is exact;
what it trains on, the budgets, checkpoints and the adversarial block: docs/training.md."""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path

import torch

from bench import REPO_ROOT, SAMPLE_RATE
from bench.adapters.base import Found
from bench.core.console import err_console
from bench.core.env import hardware_label
from bench.core.errors import BenchError
from bench.core.names import inside, validate_model_name, validate_run_id, validate_track_name
from bench.data.prepared import PreparedTrack
from bench.train import distributed
from bench.train.adversarial import build as build_adversarial
from bench.train.batches import DeviceBatches, SegmentBatches, worker_init
from bench.train.checkpoints import RESUME_FIELDS, load_checkpoint, load_checkpoint_model, save_checkpoint
from bench.train.losses import build_loss
from bench.train.options import LEGACY
from bench.train.resident import ResidentAudio
from bench.train.runconfig import RunConfig, budget_record
from bench.train.step import lr_at, train_step, validation_scores

__all__ = ["Trainer", "SegmentBatches", "DeviceBatches", "train", "train_step", "load_checkpoint", "load_checkpoint_model",
           "training_run_dir", "RUNS_DIR"]

RUNS_DIR = REPO_ROOT / "runs"


def training_run_dir(runs_dir: Path, pt: PreparedTrack, name: str, run_id: str) -> Path:
    """``<runs_dir>/<track>/<model>/<run_id>``, refused when a name would lead outside `runs_dir`."""
    root = Path(runs_dir or RUNS_DIR)
    path = root / validate_track_name(pt.track.name) / validate_model_name(name) / validate_run_id(run_id)
    inside(root, path, "training run folder")
    return path


def train(found: Found, pt: PreparedTrack, run: RunConfig, *, run_id: str, device: str = "cpu", resume: bool = False,
          runs_dir: Path | None = None, progress=None, nproc: int = 1):
    """(best model, budget record, what was trained) of `found.adapter` trained with `run`, on rank 0 of
    `nproc` processes (or of torchrun's); the other ranks return ``(None, None, None)``."""
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


def _train(**kwargs):   # a module-level function: `distributed.spawn` pickles it
    return Trainer(**kwargs).fit()


class Trainer:
    """One process's part of a training run: the model, its optimizer (and discriminator), the data, the
    step, the clock and the best validation loss. What draws random numbers (the model, the discriminator,
    the numpy loader's iterator, the restored generators) does so in a fixed order: keep it, or a seed no
    longer gives the same weights and ``--resume`` is no longer exact."""

    def __init__(self, found: Found, pt: PreparedTrack, run: RunConfig, *, run_id: str, device: str, resume: bool,
                 runs_dir: Path | None, progress=None):
        self.adapter, self.pt, self.rank = found.adapter, pt, distributed.current()
        self.device = distributed.rank_device(device, self.rank)
        run_id = distributed.broadcast_object(run_id, self.rank)   # under torchrun each process made its own default id
        self.progress = progress if self.rank.main else None
        # a checkpoint of the trainer before these options resumes as it was trained: numpy noise, no shift
        self.model_config, self.cfg, self.preset = run.model_config, {**LEGACY, **run.train_config}, run.preset
        self.check_options()
        self.rdir = training_run_dir(runs_dir, pt, self.adapter.name, run_id)
        self.last_path, self.best_path, self.log_path = (self.rdir / n for n in ("last.pt", "best.pt", "log.csv"))
        ck = self.checkpoint_to_resume() if resume else self.refuse_a_second_run()
        self.setup(ck)
        self.setup_data()
        self.setup_log()
        self.start(ck)

    # setup
    def check_options(self) -> None:
        cfg = self.cfg
        if cfg["noise"] not in ("torch", "numpy"):
            raise BenchError(f"training option noise={cfg['noise']!r}: choose torch or numpy")
        _check_batch(cfg["batch_size"], self.rank.world)
        for option in ("shift", "tilt_db"):
            if cfg["noise"] == "numpy" and cfg[option]:
                raise BenchError(f"the {option} augmentation is implemented on the torch path only",
                                 hint=f"train with noise=torch, or {option}=0")

    def checkpoint_to_resume(self) -> dict:
        if not self.last_path.exists():
            raise BenchError(f"nothing to resume: {self.last_path} does not exist", hint="check --run-id")
        ck = load_checkpoint(self.last_path)
        if missing := [k for k in RESUME_FIELDS if k not in ck]:
            raise BenchError(f"{self.last_path}: cannot resume from it: missing field(s) {', '.join(missing)}")
        return ck

    def refuse_a_second_run(self) -> None:
        if self.last_path.exists():
            raise BenchError(f"{self.rdir} already holds a training run",
                             hint="pass --resume to continue it, or another --run-id")

    def setup(self, ck: dict | None) -> None:
        """Threads, the model, the discriminator, the optimizers and the loss; the counters of `ck`."""
        cfg, device, rank = self.cfg, self.device, self.rank
        self.workers = cfg["num_workers"] if cfg["noise"] == "numpy" else 0
        if device == "cpu":
            # intra-op threads that compete with the data workers (or the other ranks) for the cores stall each other
            n = cfg["cpu_threads"]
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // rank.world - self.workers) if n == "auto" else int(n))
        self.use_amp = device.startswith("cuda") and cfg["amp"] in ("auto", True)
        torch.manual_seed(cfg["seed"])
        self.model = self.adapter.build(**self.model_config).to(device)
        # None without an "adversarial" block: then nothing is built and no random number drawn
        self.adv = build_adversarial(self.adapter, cfg.get("adversarial"), device, use_amp=self.use_amp,
                                     seed=cfg["seed"], batch=cfg["batch_size"])
        if rank.rank:   # the same initial weights on every rank; then each its own dropout etc.
            torch.manual_seed(cfg["seed"] * 1_000_003 + rank.rank)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]),
                                     weight_decay=cfg["weight_decay"])
        self.step, self.elapsed, self.best, self.last_valid = 0, 0.0, math.inf, {}
        if ck is not None:
            self.step, self.elapsed, self.best = ck["step"], ck["elapsed"], ck["best_valid"]
            self.last_valid = {"valid_scale": ck["budget"].get("valid_scale")}
        self.loss_fn = build_loss(cfg["loss"]).to(device)

    def setup_data(self) -> None:
        """The valid set (rank 0) and this rank's slice of every training batch, on either data path."""
        cfg, pt, rank = self.cfg, self.pt, self.rank
        train_clean = pt.load_split("train")
        self.valid = [(pt.load_noisy("valid", u), pt.load_clean("valid", u)) for u in pt.utt_ids("valid")] \
            if rank.main else []
        segment = int(round(cfg["segment_seconds"] * SAMPLE_RATE))
        self.steps_per_epoch = max(1, int(round(sum(len(a) for a in train_clean.values()) /
                                                (segment * cfg["batch_size"]))))
        self.valid_every = self.steps_per_epoch if cfg["valid_every"] == "epoch" else int(cfg["valid_every"])
        per_rank = cfg["batch_size"] // rank.world
        items = range(rank.rank * per_rank, (rank.rank + 1) * per_rank)   # this rank's slice of the global batch
        if self.adv:
            self.adv.items = items
        self.loader = None
        if cfg["noise"] == "torch":
            audio = ResidentAudio(train_clean, pt.sampling_weights(), self.device)
            del train_clean
            self.next_batch = DeviceBatches(audio, pt.protocol, segment, cfg["seed"], items, shift=int(cfg["shift"]),
                                            tilt_db=float(cfg["tilt_db"])).batch
        else:
            data = SegmentBatches(train_clean, pt.protocol, cfg["batch_size"], segment, cfg["seed"], self.step,
                                  pt.sampling_weights(), items=items)
            self.loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=self.workers,
                                                      worker_init_fn=worker_init if self.workers else None,
                                                      persistent_workers=False,
                                                      pin_memory=self.device.startswith("cuda"))

    def setup_log(self) -> None:
        """The run folder's config.json (rank 0), the progress bar, the running loss and the clock."""
        if self.rank.main:
            self.rdir.mkdir(parents=True, exist_ok=True)
            (self.rdir / "config.json").write_text(json.dumps({
                "adapter": self.adapter.name, "model_config": self.model_config, "train_config": self.cfg,
                "preset": self.preset}, indent=2))
        self.max_steps, self.max_minutes = self.cfg["max_steps"], self.cfg["max_minutes"]
        self.log_every = int(self.cfg["log_every"])
        self.task = self.progress.add_task(f"train {self.adapter.name}", total=self.max_steps or None,
                                           completed=self.step) if self.progress else None
        self.running, self.n_running, self.since = torch.zeros((), device=self.device), 0, self.step
        self.t0 = time.time() - self.elapsed
        self.hardware = hardware_label(self.device, torch.get_num_threads())

    def start(self, ck: dict | None) -> None:
        """Train mode, the numpy path's loader, the state of `ck`, and the wrappers of the model."""
        self.model.train()
        if self.loader is not None:
            it = iter(self.loader)  # creating the iterator draws from torch's RNG: restore the RNG after it
            self.next_batch = lambda _step: next(it)
        if ck is not None:
            self.resume(ck)
        net = self.model
        if self.rank.active:
            net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[torch.cuda.current_device()] if self.device.startswith("cuda") else None,
                static_graph=True)
        self.fwd = torch.compile(net) if self.cfg["compile"] else net
        if self.adv and self.rank.active:
            self.adv.distribute(self.device)

    def resume(self, ck: dict) -> None:
        """The weights and optimizer states of checkpoint `ck` and this rank's random number generators."""
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        if self.adv:
            self.adv.load_state_dict(ck)
        rank = self.rank
        mine = ck["rank_rng"][rank.rank] if ck.get("rank_rng") and len(ck["rank_rng"]) == rank.world else \
            {"torch": ck["torch_rng"], "cuda": ck.get("cuda_rng")} if rank.main else None
        if mine is not None:
            torch.set_rng_state(mine["torch"])
            if self.device.startswith("cuda") and mine.get("cuda") is not None:
                torch.cuda.set_rng_state(mine["cuda"])

    # the loop
    def fit(self):
        """Train to the budget; (best model, budget record, what was trained) on rank 0, Nones elsewhere."""
        stop = self.time_up()
        self.loop_step, self.loop_t0 = self.step, time.time()
        while not (stop or self.reached_max_steps()):
            stop = self.take_step()
        return self.finish()

    def reached_max_steps(self) -> bool:
        return self.max_steps is not None and self.step >= self.max_steps

    def take_step(self) -> bool:
        """One optimizer step, then the loss read, validation and checkpoint due at it; whether to stop."""
        cfg, step, adv = self.cfg, self.step, self.adv
        noisy, clean = self.next_batch(step)
        noisy, clean = noisy.to(self.device, non_blocking=True), clean.to(self.device, non_blocking=True)
        gan = adv.generator_step(step, lr_at(step, cfg) / cfg["lr"]) if adv and adv.active(step) else None
        loss = train_step(self.fwd, self.model, self.opt, self.loss_fn, noisy, clean, lr=lr_at(step, cfg),
                          grad_clip=cfg["grad_clip"], amp=self.use_amp, adversarial=gan)
        self.step = step = step + 1
        self.running += loss   # no per-step wait for the device: the loss is read every log_every steps
        self.n_running += 1
        stop = (not self.rank.active or step % self.log_every == 0) and self.time_up()
        stop = stop or self.reached_max_steps()
        at_valid, at_checkpoint = step % self.valid_every == 0 or stop, step % cfg["checkpoint_every"] == 0 or stop
        if self.progress:
            self.progress.update(self.task, completed=step)
        if step % self.log_every == 0 or at_valid or at_checkpoint:
            self.loss_now = self.mean_loss()
            if self.progress:
                rate = (step - self.loop_step) / max(1e-9, time.time() - self.loop_t0)
                self.progress.update(self.task, description=f"train {self.adapter.name} loss {self.loss_now:.4f} "
                                                            f"{rate:.2f} step/s")
        if at_valid or at_checkpoint:
            rngs = self.rng_states()
            adv_means = self.adv.take_means(lambda t: distributed.mean_over_ranks(t, self.rank)) \
                if self.adv and at_valid else {}
            if at_valid and self.rank.main:
                self.validate(rngs, adv_means)
            if at_valid:
                self.running.zero_()
                self.n_running, self.since = 0, step
            if at_checkpoint and self.rank.main:
                save_checkpoint(self.last_path, self.state(rngs))
        return stop

    def time_up(self) -> bool:   # rank 0's clock decides for all ranks
        up = self.max_minutes is not None and time.time() - self.t0 >= 60 * self.max_minutes
        return bool(distributed.broadcast_object(up, self.rank))

    def mean_loss(self) -> float:
        """The mean training loss since the last validation (all ranks); one wait for the device."""
        value = float(distributed.mean_over_ranks(self.running, self.rank)) / max(1, self.n_running)
        if not math.isfinite(value):
            raise BenchError(f"training {self.adapter.name}: loss became {value} between steps {self.since} and "
                             f"{self.step}", hint="lower the learning rate or check the model's output scale")
        return value

    def validate(self, rngs: list, adv_means: dict) -> None:
        """Rank 0: score the valid set, log a row, warn of inverted polarity, keep the best checkpoint."""
        step, v = self.step, validation_scores(self.adapter, self.model, self.valid, self.loss_fn, self.device)
        self.last_valid = v
        row = {"step": step, "epoch": round(step / self.steps_per_epoch, 3), "train_loss": round(self.loss_now, 6),
               "valid_loss": round(v["valid_loss"], 6), "valid_si_sdr": round(v["valid_si_sdr"], 4),
               "valid_scale": round(v["valid_scale"], 4), "valid_corr": round(v["valid_corr"], 4),
               "lr": lr_at(step, self.cfg), "elapsed_s": round(time.time() - self.t0, 1)}
        row.update(adv_means)   # adversarial runs: d_loss, g_adv, g_fm since the last row ("" in the warm-up)
        new_file = not self.log_path.exists()
        with open(self.log_path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new_file:
                w.writeheader()
            w.writerow(row)
        if v["valid_scale"] < 0:
            err_console.print(f"[yellow]warning[/]: {self.adapter.name} step {step}: the output correlates "
                              f"negatively with the clean target (valid_scale {v['valid_scale']:.3f}, valid_corr "
                              f"{v['valid_corr']:.3f}): inverted polarity")
        # a GAN's best checkpoint is chosen among those trained adversarially (past the warm-up)
        if v["valid_loss"] < self.best and (self.adv is None or self.adv.active(step - 1)):
            self.best = v["valid_loss"]
            save_checkpoint(self.best_path, self.state(rngs))

    def finish(self):
        rngs = self.rng_states()
        if self.rank.main:
            final = self.state(rngs)
            save_checkpoint(self.last_path, final)
            if not self.best_path.exists():
                save_checkpoint(self.best_path, final)
        distributed.barrier(self.rank)
        return load_checkpoint_model(self.adapter, self.best_path) if self.rank.main else (None, None, None)

    # what a checkpoint holds
    def rng_states(self) -> list:
        mine = {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state() if self.device.startswith("cuda") else None}
        return distributed.gather_objects(mine, self.rank)

    def budget(self) -> dict:
        return budget_record(self.preset, self.device, self.hardware, steps=self.step,
                             epochs=round(self.step / self.steps_per_epoch, 2),
                             wall_minutes=round((time.time() - self.t0) / 60, 2), max_steps=self.max_steps,
                             max_minutes=self.max_minutes, valid_scale=self.last_valid.get("valid_scale"))

    def state(self, rngs: list) -> dict:
        return {"adapter": self.adapter.name, "model_config": self.model_config, "train_config": self.cfg,
                "preset": self.preset, "step": self.step, "elapsed": time.time() - self.t0, "best_valid": self.best,
                "model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "torch_rng": rngs[0]["torch"],
                "cuda_rng": rngs[0]["cuda"], "rank_rng": rngs if self.rank.active else None, "budget": self.budget(),
                **(self.adv.state_dict() if self.adv else {})}
