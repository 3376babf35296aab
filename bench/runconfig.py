"""The configuration of a run, resolved once: the model half (the adapter's ``config``, its preset's
``model`` and ``--set``) and the training half (the trainer's ``DEFAULTS``, the adapter's
``train_config``, its preset's ``train`` and ``--train-set``/``--max-steps``/``--max-minutes``).
An unknown preset is an error. A resumed or a given checkpoint brings its own configuration.

The trainer trains with it (and stores it in its checkpoints), the scorer writes its `record` as the
run's ``config.json``, and the leaderboard reads the model config and the preset from that record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from bench.errors import AdapterError, BenchError

BUDGET_KEYS = ("max_steps", "max_minutes")


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
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise BenchError(f"unknown training option(s) {sorted(unknown)}", hint=f"known: {', '.join(DEFAULTS)}")
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
        return cls(adapter.name, adapter.resolved_config(preset, overrides), preset,
                   train_config(adapter, preset, train_overrides or {}) if train else None)

    @classmethod
    def from_checkpoint(cls, ck: dict) -> RunConfig:
        """What a checkpoint was trained with."""
        return cls(ck["adapter"], ck["model_config"], ck.get("preset"), ck["train_config"])

    def with_budget(self, overrides: dict | None) -> RunConfig:
        """A resumed run may get a larger budget (``max_steps`` / ``max_minutes``); nothing else changes."""
        budget = {k: v for k, v in (overrides or {}).items() if k in BUDGET_KEYS and v is not None}
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
