"""Statistics for results tables and system comparisons: seeded bootstrap CIs of means, paired comparisons
(the only user of scipy) and rank agreement. All drop NaNs (failed metrics); callers report how many, since
failures are not random. What each returns and why: docs/metrics.md ("Statistics")."""

from __future__ import annotations

import math
from functools import lru_cache
import warnings

import numpy as np

__all__ = ["bootstrap_ci", "bootstrap_cis", "paired_comparison"]

#: Upper bound on the number of elements gathered at once by the bootstrap (memory ~ 8 bytes each).
_CHUNK_ELEMENTS = 2_000_000
#: the resample-count rows multiplied at once by `_resample_means` (bytes; fits a core's L2 cache)
_CACHE_BYTES = 256 * 1024


def _as_1d(values, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 0:
        x = x.reshape(1)
    if x.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {x.shape}")
    if np.any(np.isinf(x)):
        raise ValueError(f"{what} contains +-inf (NaNs are dropped, infinities are not)")
    return x


def _check_params(n_resamples: int, confidence: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


@lru_cache(maxsize=8)
def _resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """How often each of `n` values is drawn in each resample: ``(n_resamples, n)``, float64. The draws are
    chunks of ``Generator(PCG64(seed)).integers(0, n, (rows, n))``, `rows` a function of `n` alone, so results
    do not depend on available memory; cached, as every metric of a results folder with `n` values uses them."""
    rng = np.random.Generator(np.random.PCG64(seed))
    rows = max(1, _CHUNK_ELEMENTS // n)
    out = np.zeros((n_resamples, n), dtype=np.float64)
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        flat = (np.arange(stop - start)[:, None] * n + idx).ravel()
        out[start:stop] = np.bincount(flat, minlength=(stop - start) * n).reshape(stop - start, n)
    out.setflags(write=False)
    return out


def bootstrap_cis(columns, *, n_resamples: int = 10000, confidence: float = 0.95,
                  seed: int = 0) -> list[tuple[float, float, float]]:
    """`bootstrap_ci` of each of `columns` (1-D arrays): the columns with the same number of non-NaN values
    share one draw (as they do one by one), and each block of its resample counts is read once for all."""
    _check_params(n_resamples, confidence)
    xs = [x[~np.isnan(x)] for x in (_as_1d(c, "values") for c in columns)]
    out: list = [None] * len(xs)
    by_size: dict[int, list[int]] = {}
    for i, x in enumerate(xs):
        if x.size <= 1:
            out[i] = (math.nan,) * 3 if x.size == 0 else (float(x[0]),) * 3
        else:
            by_size.setdefault(x.size, []).append(i)
    alpha = 1.0 - confidence
    for n, idx in by_size.items():
        means = _resample_means(_resample_counts(n, n_resamples, seed), [xs[i] for i in idx])
        q = np.quantile(means, [alpha / 2, 1 - alpha / 2], axis=1)
        for j, i in enumerate(idx):
            mean = float(xs[i].mean())
            # the CI of a constant sample is that constant; guard against float noise in the means
            out[i] = (mean, float(min(q[0, j], mean)), float(max(q[1, j], mean)))
    return out


def _resample_means(counts: np.ndarray, xs: list[np.ndarray]) -> np.ndarray:
    """``counts @ x / n`` for each x of `xs`, one row each ``(len(xs), n_resamples)``: matrix-vector products
    (a matrix product would round differently) over blocks of rows that stay in the CPU cache and under
    the BLAS's threading threshold; a row's product does not depend on the block (tests/test_speed.py)."""
    n = counts.shape[1]
    out = np.empty((len(xs), counts.shape[0]))
    step = max(4, _CACHE_BYTES // (8 * n) // 4 * 4)
    for start in range(0, counts.shape[0], step):
        block = counts[start:start + step]
        for j, x in enumerate(xs):
            out[j, start:start + step] = block @ x
    return out / n


def bootstrap_ci(values, *, n_resamples: int = 10000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """Percentile-bootstrap CI of the mean of the non-NaN values, ``(mean, low, high)``, widened if needed
    to contain the mean (docs/metrics.md). One value: ``(v, v, v)``; none: NaNs."""
    return bootstrap_cis([values], n_resamples=n_resamples, confidence=confidence, seed=seed)[0]


def paired_comparison(a, b, *, n_resamples: int = 10000, seed: int = 0, confidence: float = 0.95,
                      alpha: float = 0.05, higher_is_better: bool = True, ttest: bool = True) -> dict:
    """Two systems compared on their paired per-utterance values ``a[i]``, ``b[i]`` (pairs with a NaN
    dropped; `ValueError` if their lengths differ): bootstrap CI of the mean of ``a - b``, Wilcoxon p (the
    decision: ``significant`` is ``wilcoxon_p < alpha``), paired t-test p, wins/losses/ties; each field and
    edge case: docs/metrics.md. ``ttest=False`` leaves ``ttest_p`` NaN (the board's tests need no scipy)."""
    _check_params(n_resamples, confidence)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    xa, xb = _as_1d(a, "a"), _as_1d(b, "b")
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must be paired values of the same utterances, got lengths "
                         f"{xa.size} and {xb.size}")
    keep = ~(np.isnan(xa) | np.isnan(xb))
    xa, xb = xa[keep], xb[keep]
    d = xa - xb
    n = int(d.size)
    nan = math.nan
    out = {"n": n, "n_dropped": int(keep.size - n), "mean_a": nan, "mean_b": nan, "mean_diff": nan,
           "median_diff": nan, "ci_low": nan, "ci_high": nan, "confidence": confidence, "wilcoxon_p": nan,
           "ttest_p": nan, "wins": 0, "losses": 0, "ties": 0, "significant": False, "alpha": alpha}
    if n == 0:
        return out
    better, worse = (d > 0, d < 0) if higher_is_better else (d < 0, d > 0)
    mean_diff, ci_low, ci_high = bootstrap_ci(d, n_resamples=n_resamples, confidence=confidence, seed=seed)
    out.update(mean_a=float(xa.mean()), mean_b=float(xb.mean()), mean_diff=mean_diff,
               median_diff=float(np.median(d)), ci_low=ci_low, ci_high=ci_high,
               wins=int(better.sum()), losses=int(worse.sum()), ties=int((d == 0).sum()))
    if not np.any(d):
        out.update(wilcoxon_p=1.0, ttest_p=1.0)
        return out
    out["wilcoxon_p"] = _exact_wilcoxon_p(d)
    if math.isnan(out["wilcoxon_p"]) or ttest:
        from scipy import stats as _st   # 1-2 s to import: not for the board's exact tests

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # scipy's small-sample / precision-loss warnings
            if math.isnan(out["wilcoxon_p"]):
                out["wilcoxon_p"] = float(_st.wilcoxon(xa, xb).pvalue)
            if ttest and n > 1:
                out["ttest_p"] = float(_st.ttest_rel(xa, xb).pvalue)
    out["significant"] = bool(out["wilcoxon_p"] < alpha)
    return out


@lru_cache(maxsize=8)
def _signed_rank_pmf(n: int) -> np.ndarray:
    """P(sum of the ranks of the positive differences = r), r = 0 .. n(n+1)/2, under the null, computed as
    scipy computes it (each rank in turn halves and shifts the distribution)."""
    c = np.ones(1)
    for k in range(1, n + 1):
        prev, c = c, np.zeros(k * (k + 1) // 2 + 1)
        c[:prev.size] = prev * 0.5
        c[-prev.size:] += prev * 0.5
    c.setflags(write=False)
    return c


def _exact_wilcoxon_p(d: np.ndarray) -> float:
    """``scipy.stats.wilcoxon(a, b).pvalue`` for ``d = a - b`` where scipy's default takes its exact test
    (at most 50 pairs, no zero difference, no tied |d|), bit for bit: the same distribution, summed over
    the same slices; NaN elsewhere (the caller asks scipy)."""
    mags = np.sort(np.abs(d))
    if d.size > 50 or mags[0] == 0 or np.any(mags[1:] == mags[:-1]):
        return math.nan
    r_plus = int(np.sum(np.searchsorted(mags, np.abs(d[d > 0])) + 1))
    pmf, mean = _signed_rank_pmf(d.size), d.size * (d.size + 1) / 4
    cdf = pmf[:r_plus + 1].sum() if r_plus <= mean else 1 - pmf[r_plus + 1:].sum()
    sf = pmf[r_plus:].sum() if r_plus <= mean else 1 - pmf[:r_plus].sum()
    return float(np.clip(2 * np.minimum(sf, cdf), 0, 1))


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """Ranks of each row of `v` (ties: their average rank), as ``scipy.stats.rankdata`` gives them."""
    less = (v[:, None, :] < v[:, :, None]).sum(axis=-1)
    same = (v[:, None, :] == v[:, :, None]).sum(axis=-1)
    return less + (same + 1) / 2


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of `x` and `y` ``(rows, systems)``, equal to
    ``scipy.stats.spearmanr(x[i], y[i]).statistic``: NaN for a row with a NaN or a constant row. The ranks'
    sums of products are exact in float64, so one matrix expression gives scipy's numbers bit for bit
    (np.corrcoef of the ranks: covariances times 1/(n-1), divided by each standard deviation in turn)."""
    n = x.shape[1]
    rx, ry = _average_ranks(x) - (n + 1) / 2, _average_ranks(y) - (n + 1) / 2
    inv = np.true_divide(1, n - 1)
    cxy, cxx, cyy = (rx * ry).sum(1) * inv, (rx * rx).sum(1) * inv, (ry * ry).sum(1) * inv
    bad = (np.isnan(x).any(1) | np.isnan(y).any(1) | (x == x[:, :1]).all(1) | (y == y[:, :1]).all(1))
    with np.errstate(all="ignore"):
        r = np.clip(cxy / np.sqrt(cyy) / np.sqrt(cxx), -1, 1)   # scipy returns rs[1, 0]: divided by y's first
    return np.where(bad, np.nan, r)


def rank_agreement(a: list, b: list, *, n_resamples: int = 2000, confidence: float = 0.95,
                   seed: int = 0) -> tuple[float, float, float]:
    """Spearman correlation of the systems' mean scores on two sets (`a`, `b`: per system, in one order, its
    per-utterance scores; NaNs ignored), with a percentile bootstrap CI: each resample redraws each set's
    utterances (one draw for all its systems, so they stay paired). The draws are taken one resample at a
    time, as they always were; the means and correlations of all resamples at once (`spearman_rows`)."""
    _check_params(n_resamples, confidence)
    A, B = np.vstack([np.asarray(x, float) for x in a]), np.vstack([np.asarray(x, float) for x in b])
    if A.shape[0] != B.shape[0] or A.shape[0] < 3:
        raise ValueError("rank agreement needs the same systems (at least 3) on both sets")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # all-NaN means of a system: that resample is dropped
        point = float(spearman_rows(np.nanmean(A, axis=1)[None], np.nanmean(B, axis=1)[None])[0])
        rng = np.random.default_rng(seed)
        draws = [(rng.integers(0, A.shape[1], A.shape[1]), rng.integers(0, B.shape[1], B.shape[1]))
                 for _ in range(n_resamples)]
        rhos = []
        for start in range(0, n_resamples, 256):
            ia, ib = (np.stack(d) for d in zip(*draws[start:start + 256]))
            rhos.append(spearman_rows(np.nanmean(A[:, ia], axis=2).T, np.nanmean(B[:, ib], axis=2).T))
    vals = np.concatenate(rhos)
    vals = vals[np.isfinite(vals)]
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(vals, [alpha, 1 - alpha]) if vals.size else (math.nan, math.nan)
    return point, float(lo), float(hi)
