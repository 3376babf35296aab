"""The manipulations a protocol spec may list: ``op(X, rng, ctx, **params) -> X`` on the complex128 STFT
``(freq_bins, frames)``, with the manipulation's own numpy generator and facts about the utterance (`Context`).
Parameters come only from the spec: no defaults here, so a spec that omits one fails loudly."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Context:
    sample_rate: int
    n_fft: int
    hop_length: int
    clean_power: float  # mean |X_clean|^2 over all coefficients

    @property
    def hz_per_bin(self) -> float:
        return self.sample_rate / self.n_fft

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.hop_length / self.sample_rate


def zero_strongest(X, rng, ctx, *, top_fraction: float, prob: float):
    """Zero each of the strongest `top_fraction` coefficients (by magnitude) with probability `prob`."""
    mag = np.abs(X)
    thr = np.quantile(mag, 1.0 - top_fraction)
    draw = rng.random(X.shape)
    X = X.copy()
    X[(mag >= thr) & (mag > 0) & (draw < prob)] = 0
    return X


def zero_random(X, rng, ctx, *, prob: float):
    """Zero each coefficient independently with probability `prob` (sparse "holes", heard as roughness)."""
    X = X.copy()
    X[rng.random(X.shape) < prob] = 0
    return X


def zero_bands(X, rng, ctx, *, rate_per_second: float, width_hz, duration_ms, freq_range_hz):
    """Zero time-frequency rectangles: a Poisson number (rate per second of audio), each with a
    uniform width in Hz, duration in ms and position (band-limited dropouts)."""
    n_bins, n_frames = X.shape
    duration_s = n_frames * ctx.hop_length / ctx.sample_rate
    count = int(rng.poisson(rate_per_second * duration_s))
    X = X.copy()
    lo_bin = int(np.floor(freq_range_hz[0] / ctx.hz_per_bin))
    hi_bin = min(n_bins, int(np.ceil(freq_range_hz[1] / ctx.hz_per_bin)) + 1)
    for _ in range(count):
        width = max(1, int(round(rng.uniform(*width_hz) / ctx.hz_per_bin)))
        frames = max(1, int(round(rng.uniform(*duration_ms) / ctx.ms_per_frame)))
        f0 = int(rng.integers(lo_bin, max(lo_bin + 1, hi_bin - width + 1)))
        t0 = int(rng.integers(0, max(1, n_frames - frames + 1)))
        X[f0:f0 + width, t0:t0 + frames] = 0
    return X


def zero_frames(X, rng, ctx, *, prob: float):
    """Zero whole STFT frames with probability `prob` each (short time gaps, like lost packets)."""
    X = X.copy()
    X[:, rng.random(X.shape[1]) < prob] = 0
    return X


def scale_random(X, rng, ctx, *, prob: float, gain_db):
    """Multiply each coefficient with probability `prob` by a gain uniform in dB in `gain_db`
    (spectral "musical" fluctuations)."""
    mask = rng.random(X.shape) < prob
    gains = 10.0 ** (rng.uniform(gain_db[0], gain_db[1], size=X.shape) / 20.0)
    X = X.copy()
    X[mask] = X[mask] * gains[mask]
    return X


def add_floor(X, rng, ctx, *, prob: float, snr_db, tilt_db_per_octave, reference_hz: float):
    """Add complex Gaussian values (uniform random phase, Rayleigh magnitude) to each coefficient
    with probability `prob`: a hiss floor. Its mean power per coefficient is the clean STFT's mean
    power minus an utterance-level SNR drawn uniformly from `snr_db`, tilted by a slope in dB per
    octave around `reference_hz` (0 = white, -3 = pink)."""
    n_bins, _ = X.shape
    snr = rng.uniform(*snr_db)
    tilt = rng.uniform(*tilt_db_per_octave)
    freqs = np.arange(n_bins) * ctx.hz_per_bin
    octaves = np.log2(np.maximum(freqs, ctx.hz_per_bin) / reference_hz)
    shape = 10.0 ** (tilt * octaves / 10.0)
    shape /= shape.mean()
    power = ctx.clean_power * 10.0 ** (-snr / 10.0) * shape[:, None]
    noise = np.sqrt(power / 2.0) * (rng.standard_normal(X.shape) + 1j * rng.standard_normal(X.shape))
    mask = rng.random(X.shape) < prob
    return X + np.where(mask, noise, 0)


def keyword_params(op) -> set[str]:
    """The parameters of manipulation function `op` (all keyword-only, none with a default)."""
    return {p.name for p in inspect.signature(op).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def param_problems(expected: set[str], step: dict) -> str:
    """``"missing parameter(s) a; unknown parameter(s) b"`` for a spec step against `expected`; "" if none."""
    given = set(step) - {"op"}
    return "; ".join(f"{what} parameter(s) {', '.join(sorted(names))}"
                     for what, names in (("missing", expected - given), ("unknown", given - expected)) if names)


MANIPULATIONS = {op.__name__: op for op in (zero_strongest, zero_random, zero_bands, zero_frames, scale_random,
                                            add_floor)}
