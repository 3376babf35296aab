"""The configuration of a run, resolved once and checked before anything runs: the model half and the
training half, each from the adapter, its preset and the command line (a checkpoint brings its own); the
scorer writes its `record` as the run's ``config.json`` and `budget_record` as its budget
(docs/training.md, "Options and the run configuration")."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from bench.adapters.base import check_model_values, check_preset
from bench.core.errors import BenchError
from bench.train.options import BUDGET_KEYS, DEFAULTS, TRAIN_RULES, resolve_config


def check_train_values(cfg: dict, source: str = "training option") -> None:
    """Every key known and every value in its range; the message names the key, the value and the range."""
    if unknown := sorted(set(cfg) - set(DEFAULTS)):
        raise BenchError(f"unknown training option(s) {unknown}", hint=f"valid: {', '.join(DEFAULTS)}")
    for key, value in cfg.items():
        ok, rule = TRAIN_RULES[key]
        if not ok(value):
            flag = {"max_steps": "--max-steps", "max_minutes": "--max-minutes"}.get(key, key)
            raise BenchError(f"{source} {flag}: {value!r} is not valid; it must be {rule}")


def check_budget(overrides: dict) -> None:
    """The budget of the command line (``max_steps``/``max_minutes``), checked before anything runs."""
    check_train_values({k: overrides[k] for k in BUDGET_KEYS if overrides.get(k) is not None})


def train_config(adapter, preset: str | None, overrides: dict) -> dict:
    """The training half: every option of bench/train/options.py, with a budget."""
    check_preset(adapter, preset)
    cfg = {**DEFAULTS, **adapter.train_config}
    if preset:
        cfg.update(adapter.presets[preset].get("train", {}))
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    check_train_values(cfg)
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


def budget_record(preset: str | None, device: str, hardware: str, **trained) -> dict:
    """A run's budget record, of a training run when given `trained` (steps, epochs, ... valid_scale)."""
    rec = {"trained": bool(trained), "preset": preset,
           **{k: trained.get(k) for k in ("steps", "epochs", "wall_minutes", *BUDGET_KEYS)},
           "device": device, "hardware": hardware, "checkpoint": None, "checkpoint_sha256": None}
    if trained:
        rec["valid_scale"] = trained.get("valid_scale")
    return rec


def read_record(run_dir: Path) -> dict:
    """A results run's ``config.json`` ({} when missing or unreadable)."""
    try:
        rec = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return rec if isinstance(rec, dict) else {}
