"""Composite speech quality measures CSIG, CBAK and COVL (Hu & Loizou, IEEE TASLP 16(1), 2008), numpy:
three linear regressions on LLR, WSS, segSNR and PESQ (PESQ-WB by default, or the raw P.862 score the
paper fitted on), each clipped to [1, 5], with the framing, 95 % trimming and critical bands of the
authors' MATLAB ``composite.m``. Every detail, and why: docs/metrics.md ("CSIG / CBAK / COVL")."""

from __future__ import annotations

import math

import numpy as np

from bench.metrics.measures import COMPOSITE_FORMULA, checked_inputs, pesq_nb, pesq_wb

__all__ = ["composite", "llr", "COMPOSITE_FORMULA", "PESQ_VARIANTS", "TRIM_FRACTION"]

PESQ_VARIANTS = ("wb", "nb-raw")
TRIM_FRACTION = 0.95  # LLR and WSS: mean of the smallest 95 % of frame values
MATLAB_EPS = float(np.finfo(np.float64).eps)
SEGSNR_RANGE = (-10.0, 35.0)
LLR_INVALID = math.log(1000.0)

# Critical bands of composite.m (Hz): centre frequencies and bandwidths
_CENTRES = (50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372, 703.378, 798.717, 904.128,
            1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08, 2446.71, 2701.97,
            2978.04, 3276.17, 3597.63)
_BANDWIDTHS = (70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398, 105.411, 116.256,
               127.914, 140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631, 255.255, 276.072,
               298.126, 321.465, 346.136)
_KMAX, _KLOCMAX = 20.0, 1.0


# framing
def _frame_geometry(sample_rate: int) -> tuple[int, int]:
    win = int(round(0.030 * sample_rate))
    return win, win // 4


def _frames(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """(frames, W) Hann-windowed frames with the framing of composite.m (docs/metrics.md)."""
    win, hop = _frame_geometry(sample_rate)
    n_frames = math.floor(len(x) / hop - win / hop)
    if n_frames < 1:
        raise ValueError(f"signal too short for the composite measures: {len(x)} samples, need at least "
                         f"{win + hop} ({(win + hop) / sample_rate * 1000:.0f} ms at {sample_rate} Hz)")
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * np.arange(1, win + 1) / (win + 1)))
    view = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n_frames]
    return view * window


def _trimmed_mean(values: np.ndarray, keep: float = TRIM_FRACTION) -> float:
    """Mean of the smallest round(keep * n) values, MATLAB rounding (half away from zero)."""
    v = np.sort(values)
    n = max(1, math.floor(len(v) * keep + 0.5))
    return float(np.mean(v[:n]))


# LLR
def _autocorrelation(frames: np.ndarray, order: int) -> np.ndarray:
    """(frames, order + 1) lags 0..order of each frame."""
    w = frames.shape[1]
    lags = [np.einsum("ij,ij->i", frames[:, : w - k], frames[:, k:]) for k in range(order + 1)]
    return np.stack(lags, axis=1)


def _levinson(r: np.ndarray) -> np.ndarray:
    """LPC polynomials [1, -alpha_1, ..., -alpha_P] (frames, P + 1) from autocorrelations (frames, P + 1)."""
    frames, p1 = r.shape
    order = p1 - 1
    alpha = np.zeros((frames, order))
    err = r[:, 0].copy()
    tiny = np.finfo(np.float64).tiny
    for i in range(order):
        acc = r[:, i + 1] - np.einsum("ij,ij->i", alpha[:, :i], r[:, i:0:-1])
        k = acc / np.where(err > 0, err, tiny)
        if i:
            alpha[:, :i] = alpha[:, :i] - k[:, None] * alpha[:, i - 1::-1]
        alpha[:, i] = k
        err = (1.0 - k * k) * err
    return np.concatenate([np.ones((frames, 1)), -alpha], axis=1)


def _toeplitz_form(a: np.ndarray, r: np.ndarray) -> np.ndarray:
    """a T(r) a^T per frame, T(r) the symmetric Toeplitz matrix of r: r_0 c_0 + 2 sum_k r_k c_k,
    c the autocorrelation of a."""
    c = _autocorrelation(a, a.shape[1] - 1)
    return r[:, 0] * c[:, 0] + 2.0 * np.einsum("ij,ij->i", r[:, 1:], c[:, 1:])


def _llr_frames(c: np.ndarray, e: np.ndarray, sample_rate: int) -> np.ndarray:
    order = 16 if sample_rate >= 10000 else 10
    fc, fe = _frames(c, sample_rate), _frames(e, sample_rate)
    rc, re = _autocorrelation(fc, order), _autocorrelation(fe, order)
    ac, ae = _levinson(rc), _levinson(re)
    with np.errstate(all="ignore"):
        ratio = _toeplitz_form(ae, rc) / _toeplitz_form(ac, rc)
        out = np.log(ratio)
    out[~(np.isfinite(ratio) & (ratio > 0))] = LLR_INVALID
    return out


# WSS
def _critical_band_filters(sample_rate: int, n_half: int) -> np.ndarray:
    """(25, n_half) Gaussian critical-band weights over FFT bins 0..n_half-1, zero below -30 dB."""
    centres, widths = np.asarray(_CENTRES), np.asarray(_BANDWIDTHS)
    nyquist = sample_rate / 2.0
    f0 = np.floor(centres / nyquist * n_half)
    bw = widths / nyquist * n_half
    norm = np.log(widths[0]) - np.log(widths)
    j = np.arange(n_half)
    filt = np.exp(-11.0 * ((j[None, :] - f0[:, None]) / bw[:, None]) ** 2 + norm[:, None])
    min_factor = math.exp(-30.0 / (2.0 * 2.303))
    return filt * (filt > min_factor)


def _nearest_peaks(energy: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """(frames, bands - 1) 'nearest peak' energies as composite.m finds them (docs/metrics.md)."""
    nb = slope.shape[1]
    rise = slope > 0
    # first index n >= i with slope <= 0 (nb if none) and last index n <= i with slope > 0 (-1 if none)
    first_fall = np.empty(slope.shape, dtype=np.intp)
    nxt = np.full(slope.shape[0], nb, dtype=np.intp)
    for i in range(nb - 1, -1, -1):
        nxt = np.where(rise[:, i], nxt, i)
        first_fall[:, i] = nxt
    last_rise = np.empty(slope.shape, dtype=np.intp)
    prev = np.full(slope.shape[0], -1, dtype=np.intp)
    for i in range(nb):
        prev = np.where(rise[:, i], i, prev)
        last_rise[:, i] = prev
    idx = np.where(rise, first_fall - 1, last_rise + 1)
    return np.take_along_axis(energy, idx, axis=1)


def _wss_frames(c: np.ndarray, e: np.ndarray, sample_rate: int) -> np.ndarray:
    win, _ = _frame_geometry(sample_rate)
    n_fft = 1 << math.ceil(math.log2(2 * win))
    filt = _critical_band_filters(sample_rate, n_fft // 2)
    out, bands = [], []
    for x in (c, e):
        spec = np.abs(np.fft.rfft(_frames(x, sample_rate), n_fft, axis=1))[:, : n_fft // 2] ** 2
        energy = 10.0 * np.log10(np.maximum(spec @ filt.T, 1e-10))
        slope = np.diff(energy, axis=1)
        peaks = _nearest_peaks(energy, slope)
        w_max = _KMAX / (_KMAX + energy.max(axis=1, keepdims=True) - energy[:, :-1])
        w_loc = _KLOCMAX / (_KLOCMAX + peaks - energy[:, :-1])
        out.append(w_max * w_loc)
        bands.append(slope)
    weights = (out[0] + out[1]) / 2.0
    return np.sum(weights * (bands[0] - bands[1]) ** 2, axis=1) / np.sum(weights, axis=1)


# segSNR
def _segsnr_frames(c: np.ndarray, e: np.ndarray, sample_rate: int) -> np.ndarray:
    fc, fe = _frames(c, sample_rate), _frames(e, sample_rate)
    signal = np.sum(fc * fc, axis=1)
    noise = np.sum((fc - fe) ** 2, axis=1)
    snr = 10.0 * np.log10(signal / (noise + MATLAB_EPS) + MATLAB_EPS)
    return np.clip(snr, *SEGSNR_RANGE)


# public functions
def _signals(clean, estimate, sample_rate) -> tuple[np.ndarray, np.ndarray, int]:
    """Checked float64 signals plus MATLAB's eps, as composite.m feeds LLR, WSS and segSNR."""
    c, e, sr = checked_inputs(clean, estimate, sample_rate)
    return c + MATLAB_EPS, e + MATLAB_EPS, sr


def llr(clean, estimate, sample_rate: int = 16000) -> float:
    """LLR of the estimate against the clean signal: 95 %-trimmed frame mean (>= 0, lower is better)."""
    c, e, sr = _signals(clean, estimate, sample_rate)
    return _trimmed_mean(_llr_frames(c, e, sr))


def _pesq_term(clean, estimate, sample_rate: int, variant: str) -> float:
    """PESQ-WB, or for "nb-raw" the raw P.862 score (`composite` checked the variant)."""
    if variant == "wb":
        return pesq_wb(clean, estimate, sample_rate)
    mos = pesq_nb(clean, estimate, sample_rate)
    # invert P.862.1: mos = 0.999 + 4 / (1 + exp(-1.4945 * raw + 4.6607))
    return (4.6607 - math.log(4.0 / (mos - 0.999) - 1.0)) / 1.4945


def composite(clean, estimate, sample_rate: int = 16000, pesq_variant: str = "wb") -> dict[str, float]:
    """``{"csig", "cbak", "covl", "pesq", "llr", "wss", "segsnr"}`` of one utterance; `ValueError` where PESQ
    is undefined and below one frame (30 ms)."""
    if pesq_variant not in PESQ_VARIANTS:
        raise ValueError(f"unknown pesq_variant {pesq_variant!r}; known: {', '.join(PESQ_VARIANTS)}")
    c, e, sr = _signals(clean, estimate, sample_rate)
    p = _pesq_term(clean, estimate, sr, pesq_variant)
    m_llr = _trimmed_mean(_llr_frames(c, e, sr))
    m_wss = _trimmed_mean(_wss_frames(c, e, sr))
    m_seg = float(np.mean(_segsnr_frames(c, e, sr)))

    def clip(v: float) -> float:
        return float(min(5.0, max(1.0, v)))

    return {
        "csig": clip(3.093 - 1.029 * m_llr + 0.603 * p - 0.009 * m_wss),
        "cbak": clip(1.634 + 0.478 * p - 0.007 * m_wss + 0.063 * m_seg),
        "covl": clip(1.594 + 0.805 * p - 0.512 * m_llr - 0.007 * m_wss),
        "pesq": float(p), "llr": m_llr, "wss": m_wss, "segsnr": m_seg,
    }
