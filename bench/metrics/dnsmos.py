"""DNSMOS P.835 (SIG, BAK, OVRL): reference-free MOS predictions through the ``speechmos`` package.

Reddy et al., "DNSMOS P.835: A non-intrusive perceptual objective speech quality metric to
evaluate noise suppressors", ICASSP 2022. ``speechmos`` 0.0.1.1 (MIT) bundles Microsoft's ONNX
models of the DNS challenge and the challenge's scoring loop (``speechmos/dnsmos.py``, a copy of
``dnsmos_local.py``); we run that loop (``DNSMOS.__call__``) with the non-personalized P.835 model
``dnsmos_models/sig_bak_ovr.onnx`` (``is_personalized_MOS=False``, i.e. the model and polynomial
mapping for speech that may contain interfering talkers are not used).

What it computes on a 16 kHz mono float signal in [-1, 1] (speechmos raises outside that range;
nothing here clips or rescales, so DNSMOS depends on the level of the signal, as in the challenge):

* A signal shorter than 9.01 s is repeated (``np.append(x, x)``, doubling) until it is at least
  9.01 s long; a 3 s utterance is scored as 12 s of itself repeated 4 times, with the seams.
* Windows of 9.01 s (144160 samples) every 1 s; ``int(floor(seconds) - 9.01) + 1`` of them.
  The part after the last full window is not scored: up to 1.99 s at the end of a longer input
  (e.g. a 10.9 s input is one window, 0-9.01 s).
* Each window: the P.835 model on the raw waveform gives raw SIG, BAK, OVRL; each is mapped by
  the challenge's fixed polynomial (for example OVRL = -0.0677 r^2 + 1.1155 r + 0.0460) and the
  per-window values are averaged. The mapped values are not clipped: at most 4.44 (SIG), 4.52
  (BAK), 4.64 (OVRL) (the maxima of the polynomials), in practice about 1..4.5.
* Silence is scored, not rejected: 3 s of zeros gives SIG 2.51, BAK 3.47, OVRL 1.84, so a
  system that over-suppresses can gain BAK; read BAK with SIG/OVRL (and the reference metrics).
* The package also runs its P.808 model (log-mel features through ``librosa``) on every window;
  its output is not reported here.

Runtime: ONNX Runtime sessions with 1 intra-op and 1 inter-op thread (scoring already runs one
process per core), created once per process on first use; outputs were bit-identical to the
package's default multi-threaded sessions on real speech (tests/test_dnsmos.py). Needs no
network and no reference signal. The optional packages are ``speechmos``, ``onnxruntime`` and
``librosa`` (which speechmos imports without declaring it): ``pip install -e '.[metrics]'``.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["dnsmos_p835", "unavailable_reason", "version", "REQUIRED_MODULES", "INSTALL_HINT", "SAMPLE_RATE",
           "WINDOW_SECONDS", "PRIMARY_MODEL"]

from bench import SAMPLE_RATE  # noqa: E402
WINDOW_SECONDS = 9.01
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
    missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if missing:
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
    reason = unavailable_reason()
    if reason:
        return f"unavailable: {reason}"
    digest = hashlib.sha256((_package_dir() / PRIMARY_MODEL).read_bytes()).hexdigest()
    return (f"speechmos {metadata.version('speechmos')}, onnxruntime {metadata.version('onnxruntime')}, "
            f"{PRIMARY_MODEL.split('/')[-1]} sha256:{digest[:16]}")


@lru_cache(maxsize=1)
def _scorer():
    """speechmos's DNSMOS scorer with single-threaded ONNX Runtime sessions (one per process)."""
    reason = unavailable_reason()
    if reason:
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
    """``{"sig", "bak", "ovrl"}`` DNSMOS P.835 of one 1-D 16 kHz signal in [-1, 1] (no reference).

    Raises `ValueError` on a non-1-D, empty or non-finite signal, another sample rate or samples
    outside [-1, 1]; `DnsmosUnavailable` when the optional packages are missing.
    """
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
