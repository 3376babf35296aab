"""Model weights as evidence: a trained run ships its ``state_dict`` as ``weights.safetensors`` in its results
folder (no code, no pickle), in float16 when that reproduces its scores, else float32, when it fits in
`MAX_SHIPPED_BYTES`; larger models record only the weights' hash. The recorded file hash is of the file as
written, so a reader can check it (docs/results-format.md)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors

from bench.core.errors import BenchError
from bench.core.files import atomic_write_bytes, file_sha256

WEIGHTS_FILE = "weights.safetensors"
#: weights larger than this (in the dtype that would be shipped) stay out of the repository
MAX_SHIPPED_BYTES = 10 * 1024 * 1024


def state_tensors(model: torch.nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The model's state dict as contiguous CPU tensors; floating tensors cast to `dtype` if given."""
    cpu = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    return {k: (t.to(dtype) if dtype is not None and t.is_floating_point() else t).contiguous() for k, t in cpu.items()}


def nbytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """A hash of the weights themselves (names, dtypes, shapes, bytes), independent of the file format."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k]
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def _canonical_header(raw: bytes) -> bytes:
    """The safetensors bytes with the JSON header's keys sorted: the writer orders the metadata as a hash map
    does, differently in every process, so the same tensors gave files of different hashes. Offsets are
    relative to the data, which is unchanged; the header stays padded with spaces to 8 bytes."""
    n = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + raw[8 + n:]


def write_weights(tensors: dict[str, torch.Tensor], path: Path, *, adapter: str) -> str:
    """Write `tensors` as safetensors (atomically); returns the file's SHA-256."""
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in tensors.values() if t.is_floating_point()})
    meta = {"adapter": adapter, "float_dtype": ",".join(dtypes) or "none", "format": "pt"}
    atomic_write_bytes(Path(path), _canonical_header(save_tensors(tensors, metadata=meta)))
    return file_sha256(Path(path))


def ship_weights(model: torch.nn.Module, run_dir: Path, *, adapter: str,
                 fp16_reproduces: Callable[[dict[str, torch.Tensor]], bool] | None = None,
                 max_bytes: int = MAX_SHIPPED_BYTES) -> dict:
    """Write the run's weights as the module docstring says; the ``summary.json`` record. `fp16_reproduces` is
    asked only when the float16 copy would fit."""
    fp32 = state_tensors(model)
    record = {"weights_sha256": tensors_sha256(fp32), "bytes_float32": nbytes(fp32)}
    has_float = any(t.is_floating_point() for t in fp32.values())
    fp16 = state_tensors(model, torch.float16) if has_float else None
    if fp16 is not None and nbytes(fp16) <= max_bytes and fp16_reproduces is not None and fp16_reproduces(fp16):
        chosen, dtype, reason = fp16, "float16", "float16 reproduces the scores within tolerance"
    elif nbytes(fp32) <= max_bytes:
        chosen, dtype, reason = fp32, "float32", "float32 (float16 not tried or not within tolerance)"
    else:
        return {**record, "shipped": False, "file": None, "sha256": None, "dtype": None, "bytes": None,
                "reason": f"{nbytes(fp32) / 2**20:.1f} MiB in float32 is over the {max_bytes / 2**20:.0f} MiB limit"}
    path = Path(run_dir) / WEIGHTS_FILE
    sha = write_weights(chosen, path, adapter=adapter)
    return {**record, "shipped": True, "file": WEIGHTS_FILE, "sha256": sha, "dtype": dtype,
            "bytes": path.stat().st_size, "reason": reason}


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a safetensors file; a damaged file is a BenchError naming it."""
    path = Path(path)
    if not path.exists():
        raise BenchError(f"{path}: weights file does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}: not a readable safetensors file ({exc})") from None


def load_into(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> torch.nn.Module:
    """Load `tensors` into `model` (cast to the model's dtypes); names must match exactly."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise BenchError(f"{source}: weights do not fit the model built from its config "
                         f"({len(missing)} missing, e.g. {missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})")
    for k, t in tensors.items():
        if tuple(t.shape) != tuple(own[k].shape):
            raise BenchError(f"{source}: tensor {k} has shape {tuple(t.shape)}, the model expects {tuple(own[k].shape)}")
    model.load_state_dict({k: t.to(own[k].dtype) for k, t in tensors.items()})
    return model
