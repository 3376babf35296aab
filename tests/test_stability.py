"""Bit-stable metrics (issue 26): no metric value depends on numpy's global random state, and computing one
leaves the caller's random state as it was. pystoi 0.4.1's eSTOI draws from that state (``row_col_normalize``
adds EPS-scaled Gaussian noise); on a half-silent estimate the unseeded value moves by ~0.0025."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from bench.metrics.registry import METRICS, available_metrics, compute_all, metric_versions

from conftest import missing_shared

sf = pytest.importorskip("soundfile")

SAMPLE = Path(os.environ.get("BENCH_DATA_ROOT")
              or Path(__file__).resolve().parents[1].parent / "shared" / "data") / "vbdemand-sample"


@pytest.fixture(scope="module")
def half_silent() -> tuple[np.ndarray, np.ndarray]:
    """The shortest p232_* clean utterance and its noisy version with the second half zeroed (near-silent
    frames are where pystoi's added noise matters)."""
    manifest = SAMPLE / "manifest.csv"
    if not manifest.is_file():
        missing_shared(f"real-speech sample not found: {manifest}")
    with open(manifest, newline="") as f:
        row = min((r for r in csv.DictReader(f) if r["utt_id"].startswith("p232_")),
                  key=lambda r: int(r["num_samples"]))
    clean, _ = sf.read(str(SAMPLE / row["clean"]), dtype="float64")
    noisy, _ = sf.read(str(SAMPLE / row["noisy"]), dtype="float64")
    noisy[len(noisy) // 2:] = 0.0
    return clean, noisy


def _under_seed(seed: int, fn, *args):
    np.random.seed(seed)
    return fn(*args)


def test_raw_pystoi_estoi_depends_on_the_global_state(half_silent):
    """The problem the seeding fixes is real on this pair (else the next test could not fail)."""
    from pystoi import stoi as raw
    a = _under_seed(0, raw, *half_silent, 16000, True)
    b = _under_seed(1, raw, *half_silent, 16000, True)
    assert abs(a - b) > 1e-4


def test_estoi_is_identical_under_different_global_states(half_silent):
    a = _under_seed(0, METRICS["estoi"], *half_silent)
    b = _under_seed(1, METRICS["estoi"], *half_silent)
    c = _under_seed(12345, METRICS["estoi"], *half_silent)
    assert a == b == c


def test_estoi_leaves_the_callers_random_state_unchanged(half_silent):
    np.random.seed(7)
    before = np.random.get_state()
    METRICS["estoi"](*half_silent)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    np.random.seed(7)
    expected = np.random.standard_normal(4)
    np.random.seed(7)
    METRICS["estoi"](*half_silent)
    assert np.array_equal(np.random.standard_normal(4), expected)


@pytest.mark.slow
def test_no_metric_depends_on_the_global_state(half_silent):
    """Every metric that runs here, computed under two global random states: identical values."""
    names = available_metrics()
    a, ea = _under_seed(0, compute_all, *half_silent, 16000, names)
    b, eb = _under_seed(1, compute_all, *half_silent, 16000, names)
    assert ea == eb
    assert {k: v for k, v in a.items() if v == v} == {k: v for k, v in b.items() if v == v}


def test_estoi_version_records_the_seeding():
    assert "estoi-seeded-v1" in metric_versions()["estoi"]["version"]
    assert "seeded" not in metric_versions()["stoi"]["version"]
