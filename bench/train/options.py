"""The training options, one table: name -> default, check, the valid values in words (the error message
names them), one-line meaning, and whether the option says how a run ran rather than what it trained (a
board row may differ from its preset in those). The trainer, the run configuration, the contract check and
the board's row rule all read it; docs/training.md says more of each option."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from bench.core.errors import BenchError

LOSSES = ("l1", "mrstft", "mrstft_sc", "mrstft_mag", "si_sdr", "snr")   # the terms of bench/train/losses.py
BUDGET_KEYS = ("max_steps", "max_minutes")


def _int(v, lo: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _num(v, lo: float, hi: float = math.inf, *, lo_open: bool = False, hi_open: bool = False) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return False
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def _loss(v) -> bool:
    return (isinstance(v, dict) and bool(v) and set(v) <= set(LOSSES)
            and all(_num(w, 0) for w in v.values()) and any(w > 0 for w in v.values()))


class Option(NamedTuple):
    default: object
    check: Callable[[object], bool]
    valid: str          # the valid values in words
    meaning: str
    how: bool = False   # says how a run was computed, not what it trained


OPTIONS = {
    "loss": Option({"l1": 1.0, "mrstft": 1.0}, _loss, "an object of loss weights >= 0 (not all 0) over "
                   f"{', '.join(LOSSES)}, e.g. {{\"l1\": 1.0}}", "weights of the losses (bench/train/losses.py)"),
    "optimizer": Option("adamw", lambda v: v == "adamw", '"adamw"', "the optimizer"),
    "lr": Option(3e-4, lambda v: _num(v, 0, lo_open=True), "a number > 0", "peak learning rate"),
    "betas": Option([0.9, 0.999], lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and
                    all(_num(b, 0, 1, hi_open=True) for b in v), "two numbers in [0, 1), e.g. [0.9, 0.999]", "AdamW betas"),
    "weight_decay": Option(0.0, lambda v: _num(v, 0), "a number >= 0", "AdamW weight decay"),
    "batch_size": Option(16, lambda v: _int(v, 1), "an integer >= 1", "the global batch (split over the processes)"),
    "segment_seconds": Option(4.0, lambda v: _num(v, 1 / 16000, 3600), "a number of seconds in [1/16000, 3600]",
                              "length of the training segments"),
    "max_steps": Option(None, lambda v: v is None or _int(v, 1), "an integer >= 1 (or none)",
                        "budget: optimizer steps", how=True),
    "max_minutes": Option(None, lambda v: v is None or _num(v, 0, lo_open=True), "a number of minutes > 0 (or none)",
                          "budget: wall-clock minutes of the loop, validation included, summed over resumes", how=True),
    "warmup_steps": Option(0, lambda v: _int(v, 0), "an integer >= 0", "steps of linear learning-rate warm-up"),
    "schedule": Option("cosine", lambda v: v in ("cosine", "constant"), '"cosine" or "constant"',
                       "cosine: decay to lr * min_lr_ratio at max_steps"),
    "min_lr_ratio": Option(0.05, lambda v: _num(v, 0, 1), "a number in [0, 1]", "the cosine schedule's end, / lr"),
    "grad_clip": Option(5.0, lambda v: v is None or _num(v, 0), "a number >= 0 (0 or none: no clipping)",
                        "gradient-norm clip"),
    "valid_every": Option("epoch", lambda v: v == "epoch" or _int(v, 1), '"epoch" or an integer number of steps >= 1',
                          "steps between validations (epoch: one pass over the train audio)"),
    "checkpoint_every": Option(100, lambda v: _int(v, 1), "an integer number of steps >= 1",
                               "steps between writes of last.pt", how=True),
    "seed": Option(0, lambda v: _int(v, 0), "an integer >= 0", "seed of the initial weights and of every batch"),
    "noise": Option("torch", lambda v: v in ("torch", "numpy"), '"torch" or "numpy"',
                    "torch: data and noise on the training device; numpy: reference, DataLoader workers"),
    "shift": Option(0, lambda v: _int(v, 0), "an integer number of samples >= 0",
                    "shift augmentation (torch path): crop segments by up to this many samples"),
    "tilt_db": Option(0.0, lambda v: _num(v, 0, 24), "a number of dB per octave in [0, 24]",
                      "spectral tilt augmentation (torch path): slope uniform in +-tilt_db dB/octave"),
    "log_every": Option(50, lambda v: _int(v, 1), "an integer number of steps >= 1",
                        "steps between reads of the training loss (the only waits for the device)", how=True),
    "num_workers": Option(1, lambda v: _int(v, 0), "an integer >= 0 (data worker processes)",
                          "DataLoader workers of the numpy path", how=True),
    "cpu_threads": Option("auto", lambda v: v == "auto" or _int(v, 1), '"auto" or an integer >= 1',
                          "torch threads on CPU: auto = cores / processes - numpy data workers (>= 1)", how=True),
    "amp": Option("auto", lambda v: v == "auto" or isinstance(v, bool), '"auto", true or false',
                  "bf16 autocast on CUDA when auto or true; never on CPU"),
    "compile": Option(False, lambda v: isinstance(v, bool), "true or false", "torch.compile the model", how=True),
    # checked key by key by bench.train.adversarial.resolve_config
    "adversarial": Option(None, lambda v: v is None or isinstance(v, dict),
                          "null or an object of adversarial options (bench/train/adversarial.py ADVERSARIAL_DEFAULTS)",
                          "a GAN block: discriminator, its optimizer, LSGAN + feature matching"),
}

DEFAULTS = {k: o.default for k, o in OPTIONS.items()}
TRAIN_RULES = {k: (o.check, o.valid) for k, o in OPTIONS.items()}   #: option -> (check, the valid values in words)
HOW_NOT_WHAT = tuple(k for k, o in OPTIONS.items() if o.how)
#: the values of options added since, for a checkpoint whose configuration does not have them
LEGACY = {"noise": "numpy", "shift": 0, "log_every": 50, "tilt_db": 0.0}


#: the ``"adversarial"`` option's block (bench/train/adversarial.py): every key optional, unknown keys an error
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
GAN_LOSSES = ("lsgan",)


def _number(block: dict, key: str, *, low: float = 0.0, strict: bool = False, integer: bool = False):
    v = block[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (v > low if strict else v >= low)
    if not ok or (integer and not float(v).is_integer()):
        kind = "an integer" if integer else "a number"
        raise BenchError(f"adversarial.{key} = {v!r}: expected {kind} {'>' if strict else '>='} {low}",
                         hint=f"defaults: {ADVERSARIAL_DEFAULTS}")
    return int(v) if integer else float(v)


def resolve_config(block) -> dict | None:
    """The ``"adversarial"`` option with every default filled in and checked; None stays None."""
    if block is None:
        return None
    if not isinstance(block, dict):
        raise BenchError(f"training option 'adversarial' = {block!r}: expected a dict or null",
                         hint=f"keys: {', '.join(ADVERSARIAL_DEFAULTS)}")
    if unknown := set(block) - set(ADVERSARIAL_DEFAULTS):
        raise BenchError(f"unknown adversarial option(s) {sorted(unknown)}", hint=f"known: {', '.join(ADVERSARIAL_DEFAULTS)}")
    out = {**ADVERSARIAL_DEFAULTS, **block}
    if out["loss"] not in GAN_LOSSES:
        raise BenchError(f"adversarial.loss = {out['loss']!r} is not supported", hint=f"choose among {', '.join(GAN_LOSSES)}")
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
