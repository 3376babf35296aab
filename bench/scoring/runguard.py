"""Binding an interrupted scoring to its model: the partial file of finished utterances starts with the
fingerprint of the model that made them (SHA-256 of its weights and of the run's configuration). A
resumed scoring with another model (another checkpoint, a larger budget, another config) discards the
partial rows and the files they came with, with a logged warning, instead of mixing two models."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

from bench.core.files import atomic_write_bytes

log = logging.getLogger(__name__)

HEADER_KEY = "model_fingerprint"


def model_fingerprint(model, config: dict) -> str:
    """SHA-256 over the model's state dict (names, dtypes, shapes, values) and `config` (canonical JSON)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if not isinstance(t, torch.Tensor):
            h.update(f"{name}={t!r};".encode())
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _rows(lines: list[str]) -> dict[str, dict]:
    done = {}
    for line in lines:
        try:
            row = json.loads(line)
            done[row["utt_id"]] = row
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # the header, or a line cut by an interruption: recomputed
    return done


def open_partial(path: Path, fingerprint: str, derived: list[Path] = ()) -> dict[str, dict]:
    """The finished rows of `path` by utterance id if written for `fingerprint`; else it and the `derived`
    files are removed, with a warning. Then `path` starts with this model's header, ready for appending."""
    path = Path(path)
    if path.exists():
        lines = path.read_text(errors="replace").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        have = header.get(HEADER_KEY) if isinstance(header, dict) else None
        if have == fingerprint:
            return _rows(lines[1:])
        rows = _rows(lines)
        if rows or lines:
            log.warning("%s: %d scored utterance(s) of another model (fingerprint %s, this model %s) discarded; "
                        "scoring starts over", path, len(rows), (have or "none")[:12], fingerprint[:12])
        for p in derived:
            Path(p).unlink(missing_ok=True)
    atomic_write_bytes(path, (json.dumps({HEADER_KEY: fingerprint}) + "\n").encode(), fsync=False)
    return {}
