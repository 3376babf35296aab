"""Adversarial training for any adapter with a ``discriminator()`` and an ``"adversarial"`` training block:
per generator step, ``d_steps`` LSGAN updates of the discriminator, then the generator's loss gets the LSGAN
and feature-matching terms. The full account: docs/training.md, "Adversarial training"."""

from __future__ import annotations

import math

import numpy as np
import torch

from bench import SAMPLE_RATE
from bench.core.errors import BenchError
from bench.train.options import resolve_config


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
        self.d_train = torch.nn.parallel.DistributedDataParallel(
            self.discriminator, device_ids=[torch.cuda.current_device()] if device.startswith("cuda") else None)

    def windows(self, clean: torch.Tensor, est: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The same ``segment_seconds`` window of each item of `clean` and `est`, placed by (seed, step, item)."""
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
        """``d_steps`` updates of the discriminator (real and fake in one batch); the last loss, detached."""
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
        """(the weighted terms, with gradient to the generator only; the adversarial; the feature-matching)."""
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
        """(loss to add, {"d_loss", "g_adv", "g_fm"}) of generator step `step`, added to the running means."""
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
        """The means since the last call ("" when none), averaged over the processes by `reduce`; then reset."""
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
    """The adversarial half of a run; None without an ``"adversarial"`` block (then no random number is drawn)."""
    cfg = resolve_config(cfg)
    if cfg is None:
        return None
    if (disc := adapter.discriminator(**cfg["discriminator"])) is None:
        raise BenchError(f"training config of {adapter.name} has an 'adversarial' block but the adapter declares "
                         "no discriminator", hint="implement Adapter.discriminator(), or drop the block")
    return AdversarialTraining(disc, cfg, device, use_amp, seed, batch)
