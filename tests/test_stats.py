"""Tests of bench.metrics.stats: bootstrap confidence intervals and paired system comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.metrics import stats as S
from bench.metrics.stats import bootstrap_ci, paired_comparison


def _normal(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


# --------------------------------------------------------------------------- bootstrap_ci


def test_ci_contains_mean_and_shrinks_with_more_data():
    small, large = _normal(30, 1), _normal(3000, 2)
    m_s, lo_s, hi_s = bootstrap_ci(small, n_resamples=4000)
    m_l, lo_l, hi_l = bootstrap_ci(large, n_resamples=4000)
    assert m_s == pytest.approx(small.mean()) and lo_s < m_s < hi_s
    assert m_l == pytest.approx(large.mean()) and lo_l < m_l < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # width ~ 1/sqrt(n): 10x narrower expected
    # and it is about the normal-theory width 2 * 1.96 * sd / sqrt(n)
    assert (hi_l - lo_l) == pytest.approx(2 * 1.96 * large.std(ddof=1) / math.sqrt(large.size), rel=0.1)


def test_higher_confidence_gives_wider_interval():
    x = _normal(100, 3)
    _, lo90, hi90 = bootstrap_ci(x, confidence=0.90, n_resamples=4000)
    _, lo99, hi99 = bootstrap_ci(x, confidence=0.99, n_resamples=4000)
    assert lo99 < lo90 < hi90 < hi99


def test_coverage_of_95_percent_ci():
    covered = 0
    for seed in range(200):
        x = np.random.default_rng(10_000 + seed).standard_normal(50)
        _, lo, hi = bootstrap_ci(x, n_resamples=2000, seed=seed)
        covered += lo <= 0.0 <= hi
    assert 180 <= covered <= 198, covered  # 90-99 % of 200


def test_bootstrap_nan_dropped_and_edge_cases():
    x = _normal(40, 4)
    with_nan = np.concatenate([x[:20], [np.nan, np.nan], x[20:]])
    assert bootstrap_ci(with_nan, n_resamples=1000) == bootstrap_ci(x, n_resamples=1000)
    assert bootstrap_ci([2.5]) == (2.5, 2.5, 2.5)
    assert bootstrap_ci([np.nan, 2.5, np.nan]) == (2.5, 2.5, 2.5)
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert all(math.isnan(v) for v in bootstrap_ci([np.nan, np.nan]))
    m, lo, hi = bootstrap_ci([0.1] * 50)
    assert lo <= m <= hi and hi - lo < 1e-12
    with pytest.raises(ValueError, match="inf"):
        bootstrap_ci([1.0, np.inf])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(x, confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(x, n_resamples=0)
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_ci(np.ones((3, 3)))


def test_bootstrap_is_deterministic_and_seeded():
    x = _normal(200, 5)
    assert bootstrap_ci(x, seed=7, n_resamples=3000) == bootstrap_ci(x, seed=7, n_resamples=3000)
    assert bootstrap_ci(x, seed=7, n_resamples=3000) != bootstrap_ci(x, seed=8, n_resamples=3000)
    assert isinstance(bootstrap_ci(x, n_resamples=100)[1], float)


def test_bootstrap_chunking_does_not_change_results(monkeypatch):
    x = _normal(300, 6)
    ref = bootstrap_ci(x, n_resamples=2000, seed=3)
    monkeypatch.setattr(S, "_CHUNK_ELEMENTS", 1000)  # 3 resamples per chunk
    assert bootstrap_ci(x, n_resamples=2000, seed=3) == ref


# --------------------------------------------------------------------------- paired_comparison


def test_paired_shift_is_significant_with_right_sign():
    a = _normal(100, 11)  # e.g. per-utterance scores of system A
    b = a + 0.5 + 0.05 * _normal(100, 12)  # system B: better on every utterance
    r = paired_comparison(a, b, n_resamples=2000)
    assert r["n"] == 100 and r["n_dropped"] == 0
    assert r["mean_diff"] == pytest.approx(float(np.mean(a - b)))
    assert r["mean_diff"] == pytest.approx(-0.5, abs=0.05)
    assert r["ci_low"] < r["mean_diff"] < r["ci_high"] < 0
    assert r["significant"] is True and r["wilcoxon_p"] < 1e-10 and r["ttest_p"] < 1e-10
    assert (r["wins"], r["losses"], r["ties"]) == (0, 100, 0)
    # reversed order flips the sign, not the significance
    rr = paired_comparison(b, a, n_resamples=2000)
    assert rr["mean_diff"] == pytest.approx(-r["mean_diff"]) and rr["significant"]
    assert (rr["wins"], rr["losses"]) == (100, 0)
    # lower-is-better metrics swap wins and losses
    rl = paired_comparison(a, b, n_resamples=2000, higher_is_better=False)
    assert (rl["wins"], rl["losses"]) == (100, 0)


def test_paired_symmetric_noise_is_not_significant():
    a = _normal(100, 21)
    z = np.abs(_normal(50, 22))
    noise = np.random.default_rng(23).permutation(np.concatenate([z, -z]))  # exactly symmetric
    r = paired_comparison(a, a + noise, n_resamples=2000)
    assert r["significant"] is False and r["wilcoxon_p"] > 0.5 and r["ttest_p"] > 0.5
    assert r["mean_diff"] == pytest.approx(0.0, abs=1e-12)
    assert r["ci_low"] < 0 < r["ci_high"]
    assert r["wins"] == r["losses"] == 50 and r["ties"] == 0
    # independent zero-mean noise: false positives at about the nominal 5 % rate
    false_pos = sum(paired_comparison(a, a + 0.3 * _normal(100, 100 + s), n_resamples=100)["significant"]
                    for s in range(100))
    assert false_pos <= 12, false_pos


def test_paired_nan_pairs_dropped():
    a = _normal(60, 31)
    b = a + 0.4 + 0.1 * _normal(60, 32)
    a_nan, b_nan = a.copy(), b.copy()
    a_nan[[0, 5]] = np.nan
    b_nan[[5, 9]] = np.nan
    r = paired_comparison(a_nan, b_nan, n_resamples=1000)
    keep = np.ones(60, bool)
    keep[[0, 5, 9]] = False
    ref = paired_comparison(a[keep], b[keep], n_resamples=1000)
    assert r["n"] == 57 and r["n_dropped"] == 3
    assert {k: v for k, v in r.items() if k != "n_dropped"} == {k: v for k, v in ref.items() if k != "n_dropped"}


def test_paired_is_deterministic_and_handles_edge_cases():
    a, b = _normal(80, 41), _normal(80, 42)
    assert paired_comparison(a, b, seed=5, n_resamples=1000) == paired_comparison(a, b, seed=5, n_resamples=1000)
    same = paired_comparison(a, a, n_resamples=500)
    assert same["ties"] == 80 and same["wilcoxon_p"] == 1.0 and same["significant"] is False
    assert same["mean_diff"] == 0.0
    empty = paired_comparison([np.nan, 1.0], [2.0, np.nan])
    assert empty["n"] == 0 and empty["n_dropped"] == 2 and empty["significant"] is False
    assert math.isnan(empty["mean_diff"]) and math.isnan(empty["wilcoxon_p"])
    one = paired_comparison([1.0], [0.5], n_resamples=100)
    assert one["n"] == 1 and one["wins"] == 1 and math.isnan(one["ttest_p"]) and not one["significant"]
    with pytest.raises(ValueError, match="same utterances"):
        paired_comparison(a, b[:-1])


def test_wilcoxon_p_is_scipys_bit_for_bit_on_every_path():
    """The exact test computed without scipy (the board's path) and each case left to scipy (ties, zeros,
    over 50 pairs, a permutation test for few pairs with ties) give scipy's p-value exactly."""
    from scipy import stats as st

    rng = np.random.default_rng(7)
    cases = []
    for n in (1, 2, 5, 13, 14, 29, 30, 50, 51, 80):
        for shift in (0.0, 0.2, 1.0, -3.0):
            a = rng.normal(size=n)
            cases.append((a, a - shift + rng.normal(size=n)))
    a = np.round(rng.normal(size=30), 1)
    cases += [(a, a[::-1].copy()),                                  # tied |a - b| (and zeros)
              (a, np.where(np.arange(30) % 7 == 0, a, a + 0.3 + rng.normal(size=30))),   # zero differences
              (a[:10], np.round(a[:10] + 0.2, 1))]                   # few pairs with ties: permutation test
    exact = 0
    for a, b in cases:
        got = paired_comparison(a, b, n_resamples=10, ttest=False)["wilcoxon_p"]
        assert got == float(st.wilcoxon(a, b).pvalue), (len(a), got)
        exact += not math.isnan(S._exact_wilcoxon_p(a - b))
    assert exact == 32   # every continuous case of at most 50 pairs takes the scipy-free path
    r = paired_comparison(cases[0][0], cases[0][1], n_resamples=10, ttest=False)
    assert math.isnan(r["ttest_p"])
