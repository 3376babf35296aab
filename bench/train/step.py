"""The pure parts of the training loop: the learning-rate schedule, one optimizer step and the validation
scores (scripts/bench_train.py times the step alone)."""

from __future__ import annotations

import math

import numpy as np
import torch

from bench.adapters.base import Adapter
from bench.train.losses import neg_si_sdr


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
    """One optimizer step; the regression loss, detached (no wait for the device). `adversarial`: ``(clean,
    output) -> loss to add``."""
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


def validation_scores(adapter: Adapter, model, valid: list[tuple[np.ndarray, np.ndarray]], loss_fn,
                      device: str) -> dict:
    """Loss, SI-SDR, and polarity (``valid_scale``, ``valid_corr``: docs/training.md) on the valid set."""
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
