"""Shared plumbing of the external reference systems: pretrained denoisers that ship their weights
inside a pip package, wrapped as training-free adapters (``submissions/<name>/adapter.py`` with
``external = True``).

Their packages are the optional extra ``external`` of pyproject.toml (two of them need a separate
``pip install --no-deps`` line: ``make install-external`` does both), so every adapter imports its
package inside `build` through `require`, which raises `AdapterError` with the install line when it
is missing: discovery (`bench list`) never needs them.

`PerUtterance` is the model the adapters return: it runs a numpy function of one utterance at the
model's own sample rate on each item of the batch on its own (fresh state per utterance, so batch
invariance and determinism hold exactly), resampling 16 kHz -> model rate -> 16 kHz with the
benchmark's pinned resampler (`bench.core.audio.resample`), and returns float32 ``(batch, time)`` of the
input's length. It has no torch parameters: the weights live in the package (ONNX graphs, a Rust or
C library); each model card states the parameter count as declared by the authors.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bench.core.audio import RESAMPLER, SAMPLE_RATE, resample
from bench.core.errors import AdapterError

def require(module: str, pip_line: str, *, locate_only: bool = False):
    """Import `module` (or, with `locate_only`, find its folder without running its ``__init__``)
    or raise `AdapterError` whose hint is the install line."""
    try:
        if not locate_only:
            return importlib.import_module(module)
        spec = importlib.util.find_spec(module)
    except ImportError as exc:
        raise AdapterError(f"the package providing {module!r} is not installed ({type(exc).__name__}: {exc})",
                           hint=f"install it: {pip_line}") from exc
    if spec is None or not spec.submodule_search_locations:
        raise AdapterError(f"the package providing {module!r} is not installed",
                           hint=f"install it: {pip_line}")
    return Path(list(spec.submodule_search_locations)[0])


def package_file(folder: Path, relative: str, pip_line: str) -> Path:
    path = folder / relative
    if not path.is_file():
        raise AdapterError(f"{path} is missing: the installed package is not the pinned version",
                           hint=f"reinstall it: {pip_line}")
    return path


def onnx_session(path: Path):
    """An ONNX Runtime session on the CPU with one thread (as the benchmark's RTF), sequential, quiet."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def resampling_lookahead_ms(model_rate: int) -> float:
    """Lookahead the two resamplings (16 kHz -> `model_rate` -> 16 kHz) add: each windowed-sinc filter of
    the pinned resampler reaches ``lowpass_filter_width / (rolloff * min(rates))`` seconds ahead."""
    if model_rate == SAMPLE_RATE:
        return 0.0
    one = RESAMPLER["lowpass_filter_width"] / (RESAMPLER["rolloff"] * min(SAMPLE_RATE, model_rate))
    return 2 * 1000.0 * one


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad a 1-D signal to `n` samples."""
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    return y[:n] if y.shape[0] >= n else np.pad(y, (0, n - y.shape[0]))


def pad_to_multiple(x: np.ndarray, hop: int, extra: int = 0) -> np.ndarray:
    """`x` followed by `extra` zeros and then zeros up to a multiple of `hop` samples."""
    total = int(math.ceil((x.shape[0] + extra) / hop) * hop)
    return np.pad(x, (0, total - x.shape[0]))


class PerUtterance(torch.nn.Module):
    """``(batch, time)`` at 16 kHz -> ``(batch, time)``: `process` (one 1-D float32 utterance at
    `model_rate` -> the enhanced utterance, aligned with it) applied to each utterance on its own."""

    def __init__(self, process: Callable[[np.ndarray], np.ndarray], model_rate: int, label: str):
        super().__init__()
        self.process, self.model_rate, self.label = process, int(model_rate), label

    def extra_repr(self) -> str:
        return f"{self.label}, model rate {self.model_rate} Hz"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2:
            raise ValueError(f"{self.label}: expected (batch, time), got shape {tuple(x.shape)}")
        n = x.shape[-1]
        items = x.detach().to("cpu", torch.float32).numpy()
        out = np.empty(items.shape, dtype=np.float32)
        for i, item in enumerate(items):
            y = resample(item, SAMPLE_RATE, self.model_rate)
            z = fit_length(self.process(np.ascontiguousarray(y, dtype=np.float32)), y.shape[0])
            out[i] = fit_length(resample(z, self.model_rate, SAMPLE_RATE), n)
        return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
