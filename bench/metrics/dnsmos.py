"""DNSMOS P.835 (SIG, BAK, OVRL; Reddy et al., ICASSP 2022): reference-free MOS predictions by speechmos
0.0.1.1's copy of the DNS challenge's scoring loop with the non-personalized P.835 model, on ONNX Runtime
sessions of one thread each (scoring already runs one process per core). Level-dependent; windowing,
mapping polynomials, ranges: docs/metrics.md. Optional packages: ``pip install -e '.[metrics]'``."""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from bench import SAMPLE_RATE

__all__ = ["dnsmos_p835", "unavailable_reason", "version", "REQUIRED_MODULES", "INSTALL_HINT", "SAMPLE_RATE",
           "PRIMARY_MODEL"]

PRIMARY_MODEL = "dnsmos_models/sig_bak_ovr.onnx"
P808_MODEL = "dnsmos_models/model_v8.onnx"
#: modules speechmos.dnsmos imports (librosa and requests are not declared by speechmos 0.0.1.1)
REQUIRED_MODULES = ("speechmos", "onnxruntime", "librosa", "requests")
INSTALL_HINT = "pip install -c constraints.txt -e '.[metrics]' (speechmos==0.0.1.1, onnxruntime, librosa)"
#: the maxima of the challenge's (concave) P.835 mapping polynomials: upper bounds of SIG, BAK, OVRL
POLY_MAX = {"sig": 4.4426, "bak": 4.5205, "ovrl": 4.6434}  # c - b^2 / (4a), rounded up


class DnsmosUnavailable(RuntimeError):
    """The optional packages DNSMOS needs are not installed."""


@lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """None when DNSMOS can run, else a one-line reason with the install command (no import done)."""
    if missing := [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]:
        return f"DNSMOS needs the optional package(s) {', '.join(missing)}: {INSTALL_HINT}"
    if not (_package_dir() / PRIMARY_MODEL).is_file():
        return f"speechmos is installed but its model {PRIMARY_MODEL} is missing: reinstall speechmos"
    return None


def _package_dir() -> Path:
    spec = importlib.util.find_spec("speechmos")
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def version() -> str:
    """Package versions and the P.835 model file's sha256, or ``"unavailable: ..."``."""
    if reason := unavailable_reason():
        return f"unavailable: {reason}"
    digest = hashlib.sha256((_package_dir() / PRIMARY_MODEL).read_bytes()).hexdigest()
    return (f"speechmos {metadata.version('speechmos')}, onnxruntime {metadata.version('onnxruntime')}, "
            f"{PRIMARY_MODEL.split('/')[-1]} sha256:{digest[:16]}")


@lru_cache(maxsize=1)
def _scorer():
    """speechmos's DNSMOS scorer with single-threaded ONNX Runtime sessions (one per process)."""
    if reason := unavailable_reason():
        raise DnsmosUnavailable(reason)
    import onnxruntime as ort
    from speechmos.dnsmos import DNSMOS

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    root = _package_dir()
    # DNSMOS.__call__ (speechmos 0.0.1.1) reads exactly these three attributes; its __init__ would
    # build sessions with the default (all cores) thread pools, so we set them ourselves.
    scorer = DNSMOS.__new__(DNSMOS)
    scorer.primary_model_path = str(root / PRIMARY_MODEL)
    cpu = ["CPUExecutionProvider"]
    scorer.onnx_sess = ort.InferenceSession(scorer.primary_model_path, opts, providers=cpu)
    scorer.p808_onnx_sess = ort.InferenceSession(str(root / P808_MODEL), opts, providers=cpu)
    return scorer


def dnsmos_p835(estimate, sample_rate: int = SAMPLE_RATE) -> dict[str, float]:
    """``{"sig", "bak", "ovrl"}`` DNSMOS P.835 of one 1-D 16 kHz signal in [-1, 1] (no reference)."""
    x = np.asarray(estimate)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"DNSMOS needs a non-empty 1-D signal, got shape {x.shape}")
    x = x.astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        raise ValueError("estimate contains NaN or Inf samples")
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"DNSMOS needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:
        raise ValueError(f"DNSMOS needs samples in [-1, 1] (it is level-dependent, we do not rescale), "
                         f"peak {peak:.3g}")
    out = _scorer()(x, SAMPLE_RATE, False)
    return {"sig": float(out["sig_mos"]), "bak": float(out["bak_mos"]), "ovrl": float(out["ovrl_mos"])}
