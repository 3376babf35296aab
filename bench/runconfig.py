"""The configuration of a run, resolved once: the model half (the adapter's ``config``, its preset's
``model`` and ``--set``) and the training half (the trainer's ``DEFAULTS``, the adapter's
``train_config``, its preset's ``train`` and ``--train-set``/``--max-steps``/``--max-minutes``).
An unknown preset is an error. A resumed or a given checkpoint brings its own configuration.

The trainer trains with it (and stores it in its checkpoints), the scorer writes its `record` as the
run's ``config.json``, and the leaderboard reads the model config and the preset from that record.

Every value is checked before anything runs: training options by type and range (`TRAIN_RULES`: the
message names the valid range), budgets (``max_steps`` an integer >= 1, ``max_minutes`` a number > 0),
model options against the adapter's option keys and the types of their defaults
(`bench.adapters.check_model_values`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from bench.adapters import check_model_values
from bench.errors import AdapterError, BenchError

BUDGET_KEYS = ("max_steps", "max_minutes")
LOSSES = ("l1", "mrstft", "mrstft_sc", "mrstft_mag", "si_sdr", "snr")   # bench.losses.CompositeLoss.NAMES


def _int(v, lo: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _num(v, lo: float, hi: float = math.inf, *, lo_open: bool = False, hi_open: bool = False) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return False
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def _loss(v) -> bool:
    return (isinstance(v, dict) and bool(v) and set(v) <= set(LOSSES)
            and all(_num(w, 0) for w in v.values()) and any(w > 0 for w in v.values()))


#: training option -> (check, the valid values in words)
TRAIN_RULES = {
    "loss": (_loss, f"an object of loss weights >= 0 (not all 0) over {', '.join(LOSSES)}, e.g. {{\"l1\": 1.0}}"),
    "optimizer": (lambda v: v == "adamw", '"adamw"'),
    "lr": (lambda v: _num(v, 0, lo_open=True), "a number > 0"),
    "betas": (lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(_num(b, 0, 1, hi_open=True) for b in v),
              "two numbers in [0, 1), e.g. [0.9, 0.999]"),
    "weight_decay": (lambda v: _num(v, 0), "a number >= 0"),
    "batch_size": (lambda v: _int(v, 1), "an integer >= 1"),
    "segment_seconds": (lambda v: _num(v, 1 / 16000, 3600), "a number of seconds in [1/16000, 3600]"),
    "max_steps": (lambda v: v is None or _int(v, 1), "an integer >= 1 (or none)"),
    "max_minutes": (lambda v: v is None or _num(v, 0, lo_open=True), "a number of minutes > 0 (or none)"),
    "warmup_steps": (lambda v: _int(v, 0), "an integer >= 0"),
    "schedule": (lambda v: v in ("cosine", "constant"), '"cosine" or "constant"'),
    "min_lr_ratio": (lambda v: _num(v, 0, 1), "a number in [0, 1]"),
    "grad_clip": (lambda v: v is None or _num(v, 0), "a number >= 0 (0 or none: no clipping)"),
    "valid_every": (lambda v: v == "epoch" or _int(v, 1), '"epoch" or an integer number of steps >= 1'),
    "checkpoint_every": (lambda v: _int(v, 1), "an integer number of steps >= 1"),
    "seed": (lambda v: _int(v, 0), "an integer >= 0"),
    "num_workers": (lambda v: _int(v, 0), "an integer >= 0 (data worker processes)"),
    "cpu_threads": (lambda v: v == "auto" or _int(v, 1), '"auto" or an integer >= 1'),
    "amp": (lambda v: v == "auto" or isinstance(v, bool), '"auto", true or false'),
    "compile": (lambda v: isinstance(v, bool), "true or false"),
    # the trainer's data-path options (bench/train.py)
    "noise": (lambda v: v in ("torch", "numpy"), '"torch" or "numpy"'),
    "shift": (lambda v: _int(v, 0), "an integer number of samples >= 0"),
    "tilt_db": (lambda v: _num(v, 0, 24), "a number of dB per octave in [0, 24]"),
    "log_every": (lambda v: _int(v, 1), "an integer number of steps >= 1"),
    # checked key by key by bench.adversarial.resolve_config (in train_config)
    "adversarial": (lambda v: v is None or isinstance(v, dict),
                    "null or an object of adversarial options (bench/adversarial.py ADVERSARIAL_DEFAULTS)"),
}


def check_train_values(cfg: dict, source: str = "training option") -> None:
    """Every key known and every value in its range; the message names the key, the value and the range."""
    from bench.train import DEFAULTS

    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise BenchError(f"unknown training option(s) {unknown}", hint=f"valid: {', '.join(DEFAULTS)}")
    for key, value in cfg.items():
        ok, rule = TRAIN_RULES[key]
        if not ok(value):
            flag = {"max_steps": "--max-steps", "max_minutes": "--max-minutes"}.get(key, key)
            raise BenchError(f"{source} {flag}: {value!r} is not valid; it must be {rule}")


def check_budget(overrides: dict) -> None:
    """The budget of the command line (``max_steps``/``max_minutes``), checked before anything runs."""
    check_train_values({k: overrides[k] for k in BUDGET_KEYS if overrides.get(k) is not None})


def check_preset(adapter, preset: str | None) -> None:
    if preset and preset not in adapter.presets:
        raise AdapterError(f"adapter {adapter.name!r} has no preset {preset!r}",
                           hint=f"presets: {', '.join(adapter.presets) or '(none)'}")


def train_config(adapter, preset: str | None, overrides: dict) -> dict:
    """The training half: every key of the trainer's DEFAULTS, with a budget."""
    from bench.train import DEFAULTS

    check_preset(adapter, preset)
    cfg = {**DEFAULTS, **adapter.train_config}
    if preset:
        cfg.update(adapter.presets[preset].get("train", {}))
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    check_train_values(cfg)
    from bench.adversarial import resolve_config

    cfg["adversarial"] = resolve_config(cfg["adversarial"])   # defaults filled in, recorded as trained
    if cfg["max_steps"] is None and cfg["max_minutes"] is None:
        raise BenchError(f"no training budget for {adapter.name}",
                         hint="pass --max-steps and/or --max-minutes, or a --preset (quick, full)")
    return cfg


@dataclass(frozen=True)
class RunConfig:
    model: str
    model_config: dict
    preset: str | None = None
    train_config: dict | None = None   # None: not trained in this run

    @classmethod
    def resolve(cls, adapter, preset: str | None = None, overrides: dict | None = None,
                train_overrides: dict | None = None, *, train: bool = False) -> RunConfig:
        check_preset(adapter, preset)
        check_model_values(adapter, overrides or {})
        return cls(adapter.name, adapter.resolved_config(preset, overrides), preset,
                   train_config(adapter, preset, train_overrides or {}) if train else None)

    @classmethod
    def from_checkpoint(cls, ck: dict) -> RunConfig:
        """What a checkpoint was trained with."""
        return cls(ck["adapter"], ck["model_config"], ck.get("preset"), ck["train_config"])

    def with_budget(self, overrides: dict | None) -> RunConfig:
        """A resumed run may get a larger budget (``max_steps`` / ``max_minutes``); nothing else changes."""
        budget = {k: v for k, v in (overrides or {}).items() if k in BUDGET_KEYS and v is not None}
        check_budget(budget)
        return replace(self, train_config={**self.train_config, **budget}) if budget else self

    def record(self, track: str, protocol: str, device: str) -> dict:
        """The run's ``config.json``."""
        out = {"model": self.model, "model_config": self.model_config, "preset": self.preset, "track": track,
               "protocol": protocol, "device": device}
        if self.train_config is not None:
            out["train"] = self.train_config
        return out


def read_record(run_dir: Path) -> dict:
    """A results run's ``config.json`` ({} when missing or unreadable)."""
    try:
        rec = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return rec if isinstance(rec, dict) else {}
