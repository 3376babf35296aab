"""Benchmark checkpoints: written atomically by the trainer, loaded with ``weights_only=True`` and checked
to have the fields of a benchmark checkpoint; a checkpoint's model and the budget of its run."""

from __future__ import annotations

from pathlib import Path

import torch

from bench import REPO_ROOT
from bench.adapters.base import Adapter, check_model_values
from bench.core.errors import BenchError
from bench.core.files import atomic_path, file_sha256

#: the fields of a benchmark checkpoint and their types (all of them are written by `train`)
CHECKPOINT_FIELDS = {"adapter": str, "model_config": dict, "train_config": dict, "model": dict, "budget": dict,
                     "step": int}
RESUME_FIELDS = ("optimizer", "torch_rng", "elapsed", "best_valid")


def save_checkpoint(path: Path, state: dict) -> None:
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except RuntimeError as exc:   # torch's writer reports a full disk as a RuntimeError naming no file
        raise BenchError(f"{path}: cannot write the checkpoint ({exc})",
                         hint="check the free space and permissions of the runs folder (--runs-dir)") from None


def load_checkpoint(path: Path, *, mmap: bool = False) -> dict:
    """A checkpoint's dict (weights_only) with the `CHECKPOINT_FIELDS`; ``mmap=True`` to read its small fields."""
    path = Path(path)
    if path.is_dir():
        raise BenchError(f"{path}: is a folder, not a checkpoint file", hint="give its best.pt or last.pt")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise BenchError(f"{path}: checkpoint does not exist") from None
    except Exception as exc:
        raise BenchError(f"{path}: cannot load checkpoint with weights_only=True ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(ck, dict):
        raise BenchError(f"{path}: not a benchmark checkpoint (holds a {type(ck).__name__}, not a dict)")
    if bad := [f"{k} ({t.__name__})" for k, t in CHECKPOINT_FIELDS.items() if not isinstance(ck.get(k), t)]:
        raise BenchError(f"{path}: not a benchmark checkpoint: missing or mistyped field(s) {', '.join(bad)}",
                         hint="checkpoints are written by `bench run` to runs/<track>/<model>/<run-id>/")
    return ck


def load_checkpoint_model(adapter: Adapter, path: Path):
    """(model with the checkpoint's weights, budget record, ``{"model_config", "train_config", "preset"}``)."""
    ck = load_checkpoint(Path(path))
    if ck.get("adapter") != adapter.name:
        raise BenchError(f"{path}: checkpoint is for adapter {ck.get('adapter')!r}, not {adapter.name!r}")
    check_model_values(adapter, ck["model_config"], source=f"{path}: model_config")
    try:
        model = adapter.build(**ck["model_config"])
    except (TypeError, ValueError) as exc:
        raise BenchError(f"{path}: cannot build {adapter.name} from the checkpoint's model_config ({exc})") from None
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise BenchError(f"{path}: the checkpoint's weights do not fit {adapter.name} ({first})") from None
    budget = {**ck["budget"], "checkpoint": _rel(Path(path)), "checkpoint_sha256": file_sha256(Path(path))}
    last = Path(path).with_name("last.pt")
    if Path(path).name == "best.pt" and last.exists():
        # the budget used is the whole run's (last.pt), whichever step scored best
        used = load_checkpoint(last, mmap=True)["budget"]
        budget.update({k: used.get(k) for k in ("steps", "epochs", "wall_minutes", "max_steps", "max_minutes")})
        budget["best_step"] = ck["step"]
    return model, budget, {"model_config": ck["model_config"], "train_config": ck["train_config"],
                           "preset": ck.get("preset")}


def _rel(p: Path) -> str:
    try:
        return p.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(p)
