"""Adversarial training, a mechanism of the shared trainer (bench/train/trainer.py) for any adapter.

An adapter that returns a discriminator from ``Adapter.discriminator(**config)`` and whose training
config has an ``"adversarial"`` block is trained as the generator of a GAN: the regression loss of
its ``"loss"`` stays as configured and the adversarial terms are added to it. Per generator step,
once ``warmup_steps`` generator steps of regression alone are done:

1. ``d_steps`` discriminator updates on the clean batch (real) against the generator's output of the
   same batch, detached (fake), with the LSGAN loss; with ``segment_seconds`` the discriminator sees one
   window of that length of each item (the same window of clean and output; where, a pure function of
   (seed, step), so ``--resume`` stays exact without drawing from torch's generator);
2. the generator's loss = regression + ``adv_weight`` * LSGAN generator loss + ``fm_weight`` *
   feature-matching loss (the updated discriminator's feature maps of the output against those of the
   clean batch, the latter without gradient), one backward pass and one generator update.

Real and fake go through the discriminator as one batch; under DDP its updates average the gradients of
all processes (`distribute`) and each process windows its own items of the global batch. The logged
losses are summed on the device and read at validation (no wait for the device per step).
Budgets, the schedule and checkpoints count generator steps. The discriminator's learning rate
follows the generator's schedule, scaled (``lr`` here is its value where the generator's is
``train_config["lr"]``). Only the generator is scored and shipped: the discriminator and its
optimizer are training state, saved in the checkpoints so that ``--resume`` is exact.

The discriminator maps a waveform batch ``(batch, time)`` to a list with one entry per
sub-discriminator: ``(score, features)``, ``score`` any-shaped logits (one per position) and
``features`` the list of its intermediate feature maps.

Losses (Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017, with targets
real = 1, fake = 0, as in HiFi-GAN, Kong et al., NeurIPS 2020), each averaged over the
sub-discriminators (HiFi-GAN sums over them; averaging keeps the weights independent of their count):

- discriminator: ``mean((D(real) - 1)^2) + mean(D(fake)^2)``;
- generator: ``mean((D(fake) - 1)^2)``;
- feature matching: the mean over the feature maps of ``mean(|f(real) - f(fake)|)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bench import SAMPLE_RATE
from bench.core.errors import BenchError

#: the ``"adversarial"`` block of a training config; every key optional, unknown keys are an error
ADVERSARIAL_DEFAULTS = {
    "loss": "lsgan",            # the GAN loss (LSGAN, the only one so far)
    "adv_weight": 1.0,          # weight of the generator's adversarial loss
    "fm_weight": 2.0,           # weight of the feature-matching loss
    "lr": 2e-4,                 # the discriminator's AdamW learning rate (scaled by the generator's schedule)
    "betas": [0.8, 0.99],
    "weight_decay": 0.0,
    "warmup_steps": 0,          # generator steps of regression alone before the discriminator and its terms start
    "d_steps": 1,               # discriminator updates per generator step
    "grad_clip": None,          # gradient-norm clip of the discriminator (None: none)
    "segment_seconds": None,    # the discriminator's window of each training segment (None: all of it)
    "discriminator": {},        # keyword arguments of Adapter.discriminator
}
LOSSES = ("lsgan",)


def _number(block: dict, key: str, *, low: float = 0.0, strict: bool = False, integer: bool = False):
    v = block[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (v > low if strict else v >= low)
    if ok and integer:
        ok = float(v).is_integer()
    if not ok:
        kind = "an integer" if integer else "a number"
        raise BenchError(f"adversarial.{key} = {v!r}: expected {kind} {'>' if strict else '>='} {low}",
                         hint=f"defaults: {ADVERSARIAL_DEFAULTS}")
    return int(v) if integer else float(v)


def resolve_config(block) -> dict | None:
    """The ``"adversarial"`` training option with every default filled in and checked; None stays None
    (no adversarial training). Raises BenchError on unknown keys or bad values."""
    if block is None:
        return None
    if not isinstance(block, dict):
        raise BenchError(f"training option 'adversarial' = {block!r}: expected a dict or null",
                         hint=f"keys: {', '.join(ADVERSARIAL_DEFAULTS)}")
    unknown = set(block) - set(ADVERSARIAL_DEFAULTS)
    if unknown:
        raise BenchError(f"unknown adversarial option(s) {sorted(unknown)}", hint=f"known: {', '.join(ADVERSARIAL_DEFAULTS)}")
    out = {**ADVERSARIAL_DEFAULTS, **block}
    if out["loss"] not in LOSSES:
        raise BenchError(f"adversarial.loss = {out['loss']!r} is not supported", hint=f"choose among {', '.join(LOSSES)}")
    out["adv_weight"], out["fm_weight"] = _number(out, "adv_weight"), _number(out, "fm_weight")
    out["lr"], out["weight_decay"] = _number(out, "lr", strict=True), _number(out, "weight_decay")
    out["warmup_steps"] = _number(out, "warmup_steps", integer=True)
    out["d_steps"] = _number(out, "d_steps", low=1, integer=True)
    for key in ("grad_clip", "segment_seconds"):
        if out[key] is not None:
            out[key] = _number(out, key, strict=True)
    b = out["betas"]
    if not (isinstance(b, (list, tuple)) and len(b) == 2 and all(isinstance(x, (int, float)) and 0 <= x < 1 for x in b)):
        raise BenchError(f"adversarial.betas = {b!r}: expected two numbers in [0, 1)", hint="e.g. [0.8, 0.99]")
    out["betas"] = [float(x) for x in b]
    if not isinstance(out["discriminator"], dict):
        raise BenchError(f"adversarial.discriminator = {out['discriminator']!r}: expected a dict of keyword arguments "
                         "of the adapter's discriminator()")
    return out


# ----------------------------------------------------------------------------------------------
# losses: `outs` is the discriminator's output, a list of (score, features) per sub-discriminator
def lsgan_discriminator_loss(real_outs, fake_outs) -> torch.Tensor:
    terms = [(r.float() - 1).pow(2).mean() + f.float().pow(2).mean() for (r, _), (f, _) in zip(real_outs, fake_outs)]
    return torch.stack(terms).mean()


def lsgan_generator_loss(fake_outs) -> torch.Tensor:
    return torch.stack([(f.float() - 1).pow(2).mean() for f, _ in fake_outs]).mean()


def feature_matching_loss(real_outs, fake_outs) -> torch.Tensor:
    terms = [(r.float() - f.float()).abs().mean()
             for (_, real_feats), (_, fake_feats) in zip(real_outs, fake_outs) for r, f in zip(real_feats, fake_feats)]
    return torch.stack(terms).mean()


class AdversarialTraining:
    """The discriminator, its optimizer and its two roles in a generator step (see the module docstring).
    The discriminator must treat the items of a batch independently (no batch norm): real and fake go
    through it as one batch."""

    COLUMNS = ("d_loss", "g_adv", "g_fm")   # logged by the trainer: means since the last validation

    def __init__(self, discriminator: torch.nn.Module, cfg: dict, device: str, use_amp: bool, seed: int = 0,
                 batch: int | None = None):
        self.cfg, self.use_amp, self.seed = cfg, use_amp, seed
        self.discriminator = discriminator.to(device).train()
        self.d_train = self.discriminator          # its DistributedDataParallel wrapper under DDP (`distribute`)
        self.optimizer = torch.optim.AdamW(self.discriminator.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]),
                                           weight_decay=cfg["weight_decay"])
        self.batch = batch
        self.items: range | None = None            # this process's slice of the global batch (the trainer sets it)
        self.sums, self.count = torch.zeros(len(self.COLUMNS), device=device), 0

    def active(self, step: int) -> bool:
        """Whether generator step `step` (0-based) trains adversarially (the warm-up is over)."""
        return step >= self.cfg["warmup_steps"]

    def distribute(self, device: str) -> None:
        """Data-parallel: the discriminator's updates average the gradients of all processes."""
        from torch.nn.parallel import DistributedDataParallel

        self.d_train = DistributedDataParallel(self.discriminator, device_ids=[torch.cuda.current_device()]
                                               if device.startswith("cuda") else None)

    def windows(self, clean: torch.Tensor, est: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The discriminator's view of step `step`: a ``segment_seconds`` window of each item, the same one
        of `clean` and `est` (all of them without ``segment_seconds`` or when the window is longer). Where,
        follows from (seed, step, item index in the global batch)."""
        n = clean.shape[-1]
        w = n if self.cfg["segment_seconds"] is None else int(round(self.cfg["segment_seconds"] * SAMPLE_RATE))
        if w >= n:
            return clean, est
        items = self.items or range(clean.shape[0])
        starts = np.random.default_rng([self.seed, step, 1]).integers(0, n - w + 1, size=max(self.batch or 0, items.stop))
        idx = torch.from_numpy(starts[items.start:items.stop])[:, None].to(clean.device) + \
            torch.arange(w, device=clean.device)
        return clean.gather(-1, idx), est.gather(-1, idx)

    def _d(self, module, x: torch.Tensor):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.use_amp):
            return module(x)

    def discriminator_step(self, clean: torch.Tensor, fake: torch.Tensor, lr_scale: float) -> torch.Tensor:
        """``d_steps`` updates of the discriminator, clean (real) against `fake` (detached), both in one
        batch; the last loss, detached (no wait for the device)."""
        for g in self.optimizer.param_groups:
            g["lr"] = self.cfg["lr"] * lr_scale
        both, b = torch.cat([clean, fake.detach()]), clean.shape[0]
        for _ in range(self.cfg["d_steps"]):
            outs = self._d(self.d_train, both)
            real = [(s[:b], [f[:b] for f in feats]) for s, feats in outs]
            fake_outs = [(s[b:], [f[b:] for f in feats]) for s, feats in outs]
            loss = lsgan_discriminator_loss(real, fake_outs)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(self.discriminator.parameters(), self.cfg["grad_clip"])
            self.optimizer.step()
        return loss.detach()

    def generator_terms(self, clean: torch.Tensor, est: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weighted adversarial + feature-matching loss of the output `est`, with gradient to the generator
        only; the adversarial loss; the feature-matching loss)."""
        self.discriminator.requires_grad_(False)    # no weight gradients: the generator's pass only
        try:
            with torch.no_grad():
                real = self._d(self.discriminator, clean)
            fake = self._d(self.discriminator, est)
        finally:
            self.discriminator.requires_grad_(True)
        adv, fm = lsgan_generator_loss(fake), feature_matching_loss(real, fake)
        return self.cfg["adv_weight"] * adv + self.cfg["fm_weight"] * fm, adv.detach(), fm.detach()

    def step(self, clean: torch.Tensor, est: torch.Tensor, step: int, lr_scale: float) -> tuple[torch.Tensor, dict]:
        """Generator step `step`: the discriminator's update(s), then the generator's adversarial terms:
        (loss to add, {"d_loss", "g_adv", "g_fm"} as detached tensors), added to the running means."""
        clean, est = self.windows(clean, est, step)
        d_loss = self.discriminator_step(clean, est, lr_scale)
        extra, adv, fm = self.generator_terms(clean, est)
        self.sums += torch.stack([d_loss, adv, fm]).to(self.sums.dtype)
        self.count += 1
        return extra, dict(zip(self.COLUMNS, (d_loss, adv, fm)))

    def generator_step(self, step: int, lr_scale: float):
        """The trainer's hook for generator step `step`: ``(clean, output) -> loss to add``."""
        return lambda clean, est: self.step(clean, est, step, lr_scale)[0]

    def take_means(self, reduce=lambda t: t) -> dict:
        """The logged means since the last call ("" when no adversarial step was taken), then reset; `reduce`
        averages a tensor over the processes (every process calls this)."""
        if not self.count:
            return {k: "" for k in self.COLUMNS}
        means = (reduce(self.sums) / self.count).tolist()
        self.sums.zero_()
        self.count = 0
        if not all(map(math.isfinite, means)):
            raise BenchError(f"adversarial training: losses became {dict(zip(self.COLUMNS, means))}",
                             hint="lower adversarial.lr, the weights, or set adversarial.grad_clip")
        return {k: round(v, 6) for k, v in zip(self.COLUMNS, means)}

    def state_dict(self) -> dict:
        return {"discriminator": self.discriminator.state_dict(), "d_optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, ck: dict) -> None:
        if "discriminator" not in ck or "d_optimizer" not in ck:
            raise BenchError("the checkpoint holds no discriminator state to resume adversarial training from")
        self.discriminator.load_state_dict(ck["discriminator"])
        self.optimizer.load_state_dict(ck["d_optimizer"])


def build(adapter, cfg: dict | None, device: str, use_amp: bool, seed: int = 0,
          batch: int | None = None) -> AdversarialTraining | None:
    """The adversarial half of a training run, or None when the config has no ``"adversarial"`` block
    (then nothing is built and no random number is drawn)."""
    cfg = resolve_config(cfg)
    if cfg is None:
        return None
    disc = adapter.discriminator(**cfg["discriminator"])
    if disc is None:
        raise BenchError(f"training config of {adapter.name} has an 'adversarial' block but the adapter declares "
                         "no discriminator", hint="implement Adapter.discriminator(), or drop the block")
    return AdversarialTraining(disc, cfg, device, use_amp, seed, batch)
