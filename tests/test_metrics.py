"""Tests of bench.metrics.registry on real speech (VoiceBank-DEMAND sample pairs, 16 kHz FLAC)."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from bench.metrics import registry as M
from bench.metrics.registry import METRICS, compute_all, metric_versions

from conftest import missing_shared

sf = pytest.importorskip("soundfile")

DATA_ROOT = Path(os.environ.get("BENCH_DATA_ROOT")
                 or Path(__file__).resolve().parents[1].parent / "shared" / "data")
SAMPLE = DATA_ROOT / "vbdemand-sample"
MANIFEST = SAMPLE / "manifest.csv"

def _read(rel: str) -> np.ndarray:
    x, sr = sf.read(str(SAMPLE / rel), dtype="float64")
    assert sr == 16000 and x.ndim == 1
    return x


@pytest.fixture(scope="module")
def pair() -> tuple[str, np.ndarray, np.ndarray]:
    """The shortest p232_* clean/noisy pair of the manifest (keeps PESQ/STOI fast)."""
    if not MANIFEST.is_file():
        missing_shared(f"real-speech sample not found: {MANIFEST} "
                       "(set BENCH_DATA_ROOT to the folder that holds vbdemand-sample/)")
    with open(MANIFEST, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["utt_id"].startswith("p232_")]
    if not rows:
        missing_shared(f"no p232_* utterance in {MANIFEST}")
    row = min(rows, key=lambda r: int(r["num_samples"]))
    clean, noisy = _read(row["clean"]), _read(row["noisy"])
    assert len(clean) == len(noisy) == int(row["num_samples"])
    return row["utt_id"], clean, noisy


@pytest.fixture(scope="module")
def identity(pair):
    _, clean, _ = pair
    return compute_all(clean, clean.copy(), metrics=[*BASIC, "csig", "cbak", "covl"])


def _white_noise_at(clean: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal(len(clean))
    return w * math.sqrt(np.dot(clean, clean) / (np.dot(w, w) * 10 ** (snr_db / 10)))


# --------------------------------------------------------------------------- registry


#: no group, need the reference, always available
BASIC = ["pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "snr"]
#: the metrics computed in this environment (DNSMOS only where its optional packages are installed)
RUNNABLE = [n for n in METRICS if METRICS[n].unavailable is None]


def test_registry_order_and_fields():
    assert list(METRICS) == [*BASIC, "csig", "cbak", "covl", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"]
    labels = {n: m.label for n, m in METRICS.items()}
    assert labels == {"pesq_wb": "PESQ-WB", "pesq_nb": "PESQ-NB", "stoi": "STOI", "estoi": "eSTOI",
                      "si_sdr": "SI-SDR", "snr": "SNR", "csig": "CSIG", "cbak": "CBAK", "covl": "COVL",
                      "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK", "dnsmos_ovrl": "DNSMOS OVRL"}
    for name, m in METRICS.items():
        assert m.name == name and callable(m.fn) and m.higher_is_better
        lo, hi = m.range
        assert lo < hi
        assert m.implementation and m.version
        assert m.table in ("main", "extra")
        assert (m.group is None) == (name in BASIC) and m.needs_reference == (not name.startswith("dnsmos"))
        if m.group:
            assert m.group in M.GROUPS and m.fn.key == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            m.name = "x"  # type: ignore[misc]
    assert METRICS["pesq_wb"].range == (0.999, 4.644) and METRICS["pesq_nb"].range == (0.999, 4.549)
    assert METRICS["si_sdr"].range == (-100.0, 100.0) and METRICS["si_sdr"].unit == "dB"
    assert "P.862.2" in METRICS["pesq_wb"].implementation


def test_versions_come_from_installed_packages():
    v = metric_versions()
    assert list(v) == list(METRICS)
    assert v["pesq_wb"]["version"] == v["pesq_nb"]["version"] == metadata.version("pesq")
    assert v["stoi"]["version"] == metadata.version("pystoi")
    assert v["estoi"]["version"] == f"{metadata.version('pystoi')}; bench/{M.ESTOI_SEEDING}"
    assert v["si_sdr"]["version"] == f"bench/{M.SI_SDR_FORMULA}"
    assert v["snr"]["version"] == f"bench/{M.SNR_FORMULA}"
    assert v["csig"]["version"] == f"bench/{M.COMPOSITE_FORMULA}; pesq {metadata.version('pesq')}"
    assert v["dnsmos_sig"]["version"] == v["dnsmos_ovrl"]["version"]  # one model run
    assert all(set(d) == {"implementation", "version"} for d in v.values())


# --------------------------------------------------------------------------- real speech


def test_identity_gives_perfect_scores(identity):
    values, errors = identity
    assert errors == {}
    assert list(values) == [*BASIC, "csig", "cbak", "covl"]
    assert values["csig"] == values["cbak"] == values["covl"] == 5.0  # clipped
    assert values["pesq_wb"] == pytest.approx(4.644, abs=0.01)
    assert values["pesq_nb"] == pytest.approx(4.549, abs=0.01)
    assert values["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert values["estoi"] == pytest.approx(1.0, abs=1e-6)
    assert values["si_sdr"] == pytest.approx(100.0, abs=1e-6)  # the documented cap
    assert values["snr"] == pytest.approx(100.0, abs=1e-6)
    for name, v in values.items():
        lo, hi = METRICS[name].range
        assert lo <= v <= hi + 1e-9


def test_metric_objects_are_callable(pair):
    _, clean, noisy = pair
    assert METRICS["snr"](clean, noisy) == M.snr(clean, noisy, 16000)


def test_white_noise_at_10_db(pair):
    _, clean, _ = pair
    est = clean + _white_noise_at(clean, 10.0)
    assert M.snr(clean, est) == pytest.approx(10.0, abs=1e-6)
    assert M.si_sdr(clean, est) == pytest.approx(10.0, abs=0.1)


def test_scaled_copy_si_sdr_invariant_snr_not(pair, identity):
    _, clean, _ = pair
    assert M.si_sdr(clean, 0.5 * clean) == pytest.approx(identity[0]["si_sdr"], abs=1e-9)
    assert M.si_sdr(clean, 3.0 * clean + 0.2) == pytest.approx(identity[0]["si_sdr"], abs=1e-6)  # gain + DC
    assert M.snr(clean, 0.5 * clean) == pytest.approx(20 * math.log10(2), abs=1e-6)  # 6.02 dB
    # scale invariance away from the cap too
    est = clean + _white_noise_at(clean, 5.0, seed=1)
    assert M.si_sdr(clean, 0.01 * est) == pytest.approx(M.si_sdr(clean, est), abs=1e-9)


def test_real_noisy_file_plausible_and_below_identity(pair, identity):
    utt, clean, noisy = pair
    values, errors = compute_all(clean, noisy, metrics=identity[0])
    assert errors == {}, utt
    assert 1.0 < values["pesq_wb"] < 3.5, (utt, values)
    assert 1.0 < values["pesq_nb"] < 4.0, (utt, values)
    assert 0.6 < values["stoi"] < 1.0, (utt, values)
    assert 0.3 < values["estoi"] < values["stoi"], (utt, values)
    assert -10.0 < values["si_sdr"] < 30.0 and -10.0 < values["snr"] < 30.0, (utt, values)
    assert 1.0 < values["cbak"] < values["csig"] < 5.0, (utt, values)
    for name in identity[0]:
        assert values[name] < identity[0][name], (utt, name)


# --------------------------------------------------------------------------- failures


def test_pesq_on_silent_estimate_is_a_recorded_failure(pair):
    _, clean, _ = pair
    values, errors = compute_all(clean, np.zeros_like(clean), metrics=[*BASIC, "csig"])
    for name in ("pesq_wb", "pesq_nb", "si_sdr", "csig"):
        assert math.isnan(values[name]) and "silent" in errors[name], name
    assert values["snr"] == pytest.approx(0.0, abs=1e-9)  # well defined: residual == -clean
    assert values["stoi"] == pytest.approx(0.0, abs=1e-6)  # no intelligible speech: a real score
    assert "stoi" not in errors and "snr" not in errors


def test_silent_reference_fails_every_metric(pair):
    _, clean, _ = pair
    needs_ref = [n for n in METRICS if METRICS[n].needs_reference]
    values, errors = compute_all(np.zeros_like(clean), clean, metrics=needs_ref)
    assert set(errors) == set(needs_ref)
    assert all(math.isnan(v) for v in values.values())
    assert all(isinstance(msg, str) and 0 < len(msg) <= 200 for msg in errors.values())


def test_pesq_errors_from_the_c_code_are_caught(pair):
    from pesq import NoUtterancesError, PesqError

    _, clean, _ = pair
    quiet = 1e-30 * np.random.default_rng(0).standard_normal(len(clean))  # not zeros, no speech to P.862
    with pytest.raises(NoUtterancesError):
        M.pesq_wb(quiet, clean)
    short = clean[:3000]  # 0.19 s < the 0.25 s PESQ needs
    with pytest.raises(PesqError):
        M.pesq_wb(short, short)
    values, errors = compute_all(quiet, clean, metrics=["pesq_wb"])
    assert math.isnan(values["pesq_wb"]) and errors["pesq_wb"].startswith("NoUtterancesError")
    values, errors = compute_all(clean, quiet, metrics=["pesq_wb", "pesq_nb"])
    assert all(math.isnan(v) for v in values.values())
    assert all("near-silent" in errors[n] for n in values)
    values, errors = compute_all(short, short, metrics=["pesq_wb", "stoi", "si_sdr"])
    assert errors["pesq_wb"].startswith("BufferTooShortError")
    assert math.isnan(values["stoi"]) and "too little active speech" in errors["stoi"]  # not pystoi's 1e-5
    assert values["si_sdr"] == pytest.approx(100.0) and "si_sdr" not in errors


def test_non_finite_estimate_is_recorded_not_raised(pair):
    _, clean, noisy = pair
    bad = noisy.copy()
    bad[100] = np.nan
    values, errors = compute_all(clean, bad, metrics=RUNNABLE)
    assert set(errors) == set(RUNNABLE) and all(math.isnan(v) for v in values.values())
    assert "NaN" in errors["snr"]


def test_unsupported_rate_fails_only_pesq(pair):
    _, clean, noisy = pair
    values, errors = compute_all(clean, noisy, sample_rate=44100, metrics=["pesq_wb", "pesq_nb", "snr"])
    assert set(errors) == {"pesq_wb", "pesq_nb"} and "16000" in errors["pesq_wb"]
    assert math.isfinite(values["snr"])


# --------------------------------------------------------------------------- caller errors


@pytest.mark.parametrize("name", list(METRICS))
def test_length_mismatch_raises(name):
    x = np.random.default_rng(0).standard_normal(16000)
    with pytest.raises(ValueError, match="same length"):
        METRICS[name].fn(x, x[:-1])
    with pytest.raises(ValueError, match="1-D"):
        METRICS[name].fn(x.reshape(2, -1), x.reshape(2, -1))


def test_compute_all_raises_on_caller_errors():
    x = np.random.default_rng(0).standard_normal(16000)
    with pytest.raises(ValueError, match="same length"):
        compute_all(x, x[:8000])
    with pytest.raises(ValueError, match="1-D"):
        compute_all(x[None, :], x[None, :])
    with pytest.raises(ValueError, match="empty"):
        compute_all(x[:0], x[:0])
    with pytest.raises(ValueError, match="unknown metric"):
        compute_all(x, x, metrics=["pesq_wb", "pesq_swb"])
    with pytest.raises(ValueError, match="sample_rate"):
        compute_all(x, x, sample_rate=0)


def test_compute_all_subset_keeps_requested_order():
    x = np.random.default_rng(0).standard_normal(16000)
    values, errors = compute_all(x, x + 0.1, metrics=["snr", "si_sdr"])
    assert list(values) == ["snr", "si_sdr"] and errors == {}
    assert values["snr"] == pytest.approx(10 * math.log10(np.dot(x, x) / (0.01 * len(x))))


# --------------------------------------------------------------------------- groups


def _counting(monkeypatch, group: str) -> list:
    calls = []
    real = M.GROUPS[group]

    def counted(clean, estimate, sample_rate):
        calls.append(len(clean))
        return real(clean, estimate, sample_rate)

    monkeypatch.setitem(M.GROUPS, group, counted)
    return calls


def test_compute_all_runs_each_group_once(pair, monkeypatch):
    _, clean, noisy = pair
    calls = _counting(monkeypatch, "composite")
    values, errors = compute_all(clean, noisy, metrics=["covl", "pesq_wb", "csig", "cbak"])
    assert calls == [len(clean)] and errors == {}
    assert list(values) == ["covl", "pesq_wb", "csig", "cbak"]
    alone = METRICS["cbak"].fn(clean, noisy, 16000)  # a grouped metric alone computes its group
    assert alone == values["cbak"] and len(calls) == 2
    compute_all(clean, noisy, metrics=["pesq_wb", "snr"])
    assert len(calls) == 2  # not requested, not computed
    if METRICS["dnsmos_ovrl"].unavailable is None:
        dcalls = _counting(monkeypatch, "dnsmos")
        names = ["dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "csig"]
        values, errors = compute_all(clean, noisy, metrics=names)
        assert len(dcalls) == 1 and len(calls) == 3 and errors == {}


def test_a_failing_group_fails_each_requested_member_once(pair, monkeypatch):
    _, clean, noisy = pair
    calls = []

    def broken(clean, estimate, sample_rate):
        calls.append(1)
        raise RuntimeError("composite exploded")

    monkeypatch.setitem(M.GROUPS, "composite", broken)
    values, errors = compute_all(clean, noisy, metrics=["csig", "snr", "covl"])
    assert len(calls) == 1 and math.isfinite(values["snr"])
    assert math.isnan(values["csig"]) and math.isnan(values["covl"])
    assert errors == {"csig": "RuntimeError: composite exploded", "covl": "RuntimeError: composite exploded"}


def test_unavailable_metric_is_recorded_not_raised(pair, monkeypatch):
    _, clean, noisy = pair
    off = dataclasses.replace(METRICS["dnsmos_bak"], unavailable="DNSMOS needs speechmos: pip install it")
    monkeypatch.setitem(METRICS, "dnsmos_bak", off)
    values, errors = compute_all(clean, noisy, metrics=["snr", "dnsmos_bak"])
    assert math.isnan(values["dnsmos_bak"]) and math.isfinite(values["snr"])
    assert errors == {"dnsmos_bak": "MetricUnavailable: DNSMOS needs speechmos: pip install it"}
    assert "dnsmos_bak" not in M.available_metrics()
