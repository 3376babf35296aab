"""The per-signal measures behind the metric registry: PESQ (P.862.2 / P.862 + P.862.1), STOI / eSTOI,
SI-SDR and SNR, plus the input checks every measure shares. Functions take ``(clean, estimate,
sample_rate)`` 1-D arrays and return a float or raise `ValueError`; ranges and failure cases of each are
in docs/metrics.md."""

from __future__ import annotations

import hashlib
import math
import threading
import warnings
from contextlib import contextmanager

import numpy as np

#: Symmetric relative regulariser of SI-SDR and SNR: caps both to [-100, +100] dB.
EPS = 1e-10
#: Bump these ids whenever the corresponding formula changes (they are recorded with results).
SI_SDR_FORMULA = "si-sdr-v1"
SNR_FORMULA = "snr-v1"
COMPOSITE_FORMULA = "composite-v1"  # bench/metrics/composite.py
#: pystoi's eSTOI adds EPS-scaled noise from numpy's global random state; we seed it per utterance
ESTOI_SEEDING = "estoi-seeded-v1"

CAP_DB = -10.0 * math.log10(EPS)  # 100 dB


def _mos_lqo(raw: float, a: float, b: float) -> float:
    return 0.999 + 4.0 / (1.0 + math.exp(-a * raw + b))


#: Maximum MOS-LQO (raw P.862 score 4.5, i.e. identical signals) of each PESQ mode.
PESQ_WB_MAX = round(_mos_lqo(4.5, 1.3669, 3.8224), 3)  # 4.644 (P.862.2)
PESQ_NB_MAX = round(_mos_lqo(4.5, 1.4945, 4.6607), 3)  # 4.549 (P.862.1)
PESQ_MIN = 0.999


# input checks
def check_shapes(clean, estimate) -> tuple[np.ndarray, np.ndarray]:
    """Caller errors: not 1-D, different lengths, empty, not real numbers."""
    c, e = np.asarray(clean), np.asarray(estimate)
    if c.ndim != 1 or e.ndim != 1:
        raise ValueError(f"expected 1-D signals of shape (time,), got clean {c.shape} and estimate {e.shape}")
    if c.shape[0] != e.shape[0]:
        raise ValueError(f"clean and estimate must have the same length, got {c.shape[0]} and "
                         f"{e.shape[0]} samples (trim or pad the estimate to the clean length)")
    if c.shape[0] == 0:
        raise ValueError("clean and estimate are empty (0 samples)")
    for what, x in (("clean", c), ("estimate", e)):
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise ValueError(f"{what} must be a real-valued numeric array, got dtype {x.dtype}")
    return c, e


def check_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    return int(sample_rate)


def checked_inputs(clean, estimate, sample_rate) -> tuple[np.ndarray, np.ndarray, int]:
    """(clean, estimate, rate) of a measure: shape checks, float64 conversion, finiteness, the rate's check."""
    c, e = check_shapes(clean, estimate)
    c, e = c.astype(np.float64, copy=False), e.astype(np.float64, copy=False)
    for what, x in (("clean", c), ("estimate", e)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{what} contains NaN or Inf samples")
    return c, e, check_rate(sample_rate)


# PESQ
def _pesq(clean, estimate, sample_rate: int, mode: str) -> float:
    c, e, sr = checked_inputs(clean, estimate, sample_rate)
    if mode == "wb" and sr != 16000:
        raise ValueError(f"PESQ-WB (P.862.2) needs 16000 Hz audio, got {sr} Hz")
    if mode == "nb" and sr not in (8000, 16000):
        raise ValueError(f"PESQ-NB (P.862) needs 8000 or 16000 Hz audio, got {sr} Hz")
    if not np.any(c):
        raise ValueError("clean reference is silent (all zeros): PESQ is undefined")
    if not np.any(e):
        raise ValueError("estimate is silent (all zeros): PESQ is undefined")
    from pesq import PesqError, pesq

    with np.errstate(all="ignore"):
        try:
            return float(pesq(sr, c, e, mode, on_error=PesqError.RAISE_EXCEPTION))
        except ValueError as exc:
            if "NaN" not in str(exc):
                raise
            # the C model's level computations overflow to NaN on a (near-)silent estimate
            raise ValueError(f"PESQ produced NaN internally, typically a near-silent estimate ({exc})") from exc


def pesq_wb(clean: np.ndarray, estimate: np.ndarray, sample_rate: int = 16000) -> float:
    """Wide-band PESQ (ITU-T P.862.2), MOS-LQO in (0.999, 4.644]; 16 kHz only. Failures: docs/metrics.md."""
    return _pesq(clean, estimate, sample_rate, "wb")


def pesq_nb(clean: np.ndarray, estimate: np.ndarray, sample_rate: int = 16000) -> float:
    """Narrow-band PESQ (ITU-T P.862, MOS-LQO mapping of P.862.1) in (0.999, 4.549]; 8 or 16 kHz."""
    return _pesq(clean, estimate, sample_rate, "nb")


# STOI
_RNG_LOCK = threading.Lock()


@contextmanager
def _seeded_global_rng(*inputs):
    """numpy's global random state seeded from a hash of `inputs` (pystoi 0.4.1's ``row_col_normalize``
    draws from it), restored afterwards: the caller's state is untouched and the value is bit-stable."""
    h = hashlib.sha256()
    for x in inputs:
        h.update(np.ascontiguousarray(x).tobytes() if isinstance(x, np.ndarray) else repr(x).encode())
    with _RNG_LOCK:
        saved = np.random.get_state()
        np.random.seed(int.from_bytes(h.digest()[:4], "little"))
        try:
            yield
        finally:
            np.random.set_state(saved)


def _stoi(clean, estimate, sample_rate: int, extended: bool) -> float:
    c, e, sr = checked_inputs(clean, estimate, sample_rate)
    if not np.any(c):
        raise ValueError("clean reference is silent (all zeros): STOI is undefined")
    from pystoi import stoi as _pystoi

    with warnings.catch_warnings(record=True) as caught, _seeded_global_rng(c, e, sr):
        warnings.simplefilter("always")
        with np.errstate(all="ignore"):
            value = float(_pystoi(c, e, sr, extended=extended))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise ValueError("too little active speech for STOI: fewer than 30 frames (~0.4 s) remain after "
                         "silent-frame removal (pystoi would return the sentinel 1e-5)")
    if not math.isfinite(value):
        raise ValueError(f"pystoi returned a non-finite value ({value})")
    return value


def stoi(clean: np.ndarray, estimate: np.ndarray, sample_rate: int = 16000) -> float:
    """STOI (Taal et al. 2011) via ``pystoi.stoi(extended=False)``: (-1, 1), in practice [0, 1]."""
    return _stoi(clean, estimate, sample_rate, extended=False)


def estoi(clean: np.ndarray, estimate: np.ndarray, sample_rate: int = 16000) -> float:
    """Extended STOI (Jensen & Taal 2016) via ``pystoi.stoi(extended=True)``: (-1, 1), ~[0, 1]."""
    return _stoi(clean, estimate, sample_rate, extended=True)


# SI-SDR / SNR
def _capped_db(signal_energy: float, noise_energy: float) -> float:
    """10*log10(S/N) regularised symmetrically: exactly in [-100, +100] dB, scale-invariant."""
    return 10.0 * math.log10((signal_energy + EPS * noise_energy) / (noise_energy + EPS * signal_energy))


def si_sdr(clean: np.ndarray, estimate: np.ndarray, sample_rate: int = 16000) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019) of the zero-mean signals, capped to [-100, 100]."""
    c, e, _ = checked_inputs(clean, estimate, sample_rate)
    s, y = c - c.mean(), e - e.mean()
    ss = float(np.dot(s, s))
    if ss == 0.0:
        raise ValueError("clean reference has zero energy after mean removal (silent or constant): "
                         "SI-SDR is undefined")
    if not np.any(y):
        raise ValueError("estimate has zero energy after mean removal (silent or constant): SI-SDR is undefined")
    alpha = float(np.dot(s, y)) / ss
    target = alpha * s
    residual = y - target
    return _capped_db(float(np.dot(target, target)), float(np.dot(residual, residual)))


def snr(clean: np.ndarray, estimate: np.ndarray, sample_rate: int = 16000) -> float:
    """SNR in dB against the residual ``estimate - clean`` (no mean removal), capped to [-100, 100]."""
    c, e, _ = checked_inputs(clean, estimate, sample_rate)
    cc = float(np.dot(c, c))
    if cc == 0.0:
        raise ValueError("clean reference is silent (all zeros): SNR is undefined")
    r = e - c
    return _capped_db(cc, float(np.dot(r, r)))
