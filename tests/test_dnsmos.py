"""DNSMOS P.835 (bench.metrics.dnsmos through speechmos) on real VoiceBank-DEMAND audio, and its registry entries.

The model runs take about 0.4 s per 9.01 s window on one core, so most tests use one or two
utterances; the 35-pair means are a slow test.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import bench
from bench.metrics import dnsmos
from bench.metrics.registry import METRICS, compute_all, metric_versions

from conftest import missing_shared

needs_dnsmos = pytest.mark.skipif(dnsmos.unavailable_reason() is not None,
                                  reason=f"DNSMOS unavailable: {dnsmos.unavailable_reason()}")
NAMES = ["dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"]


@pytest.fixture(scope="module")
def corpus(shared_data):
    d = shared_data / "vbdemand-sample"
    if not (d / "manifest.csv").is_file():
        missing_shared(f"vbdemand-sample not found in {shared_data}")
    with open(d / "manifest.csv", newline="") as f:
        return d, sorted(csv.DictReader(f), key=lambda r: r["utt_id"])


def _read(d, rel) -> np.ndarray:
    x, sr = sf.read(str(d / rel), dtype="float64")
    assert sr == 16000
    return x


@pytest.fixture(scope="module")
def pair(corpus):
    """p257_008: 5.6 s, a clearly noisy pair."""
    d, rows = corpus
    row = next(r for r in rows if r["utt_id"] == "p257_008")
    return _read(d, row["clean"]), _read(d, row["noisy"])


def test_registry_entries():
    for name in NAMES:
        m = METRICS[name]
        assert m.group == "dnsmos" and m.needs_reference is False and m.unit == "MOS" and m.higher_is_better
        assert m.range[1] == dnsmos.POLY_MAX[name.split("_")[1]] and m.range[0] == -math.inf
        assert "sig_bak_ovr.onnx" in m.implementation
    assert [METRICS[n].label for n in NAMES] == ["DNSMOS SIG", "DNSMOS BAK", "DNSMOS OVRL"]


@needs_dnsmos
def test_version_records_packages_and_model_hash():
    import hashlib
    from importlib import metadata

    v = metric_versions()["dnsmos_ovrl"]["version"]
    digest = hashlib.sha256((dnsmos._package_dir() / dnsmos.PRIMARY_MODEL).read_bytes()).hexdigest()
    assert v == (f"speechmos {metadata.version('speechmos')}, onnxruntime {metadata.version('onnxruntime')}, "
                 f"sig_bak_ovr.onnx sha256:{digest[:16]}")
    assert metadata.version("speechmos") == "0.0.1.1"


@needs_dnsmos
def test_same_values_as_the_package_api_and_deterministic(pair):
    """Our single-threaded sessions give exactly what speechmos.dnsmos.run (default sessions) gives."""
    from speechmos import dnsmos as sm

    clean, noisy = pair
    for x in (clean, noisy):
        ref = sm.run(x, 16000)
        ours = dnsmos.dnsmos_p835(x)
        assert ours == {"sig": ref["sig_mos"], "bak": ref["bak_mos"], "ovrl": ref["ovrl_mos"]}
        assert dnsmos.dnsmos_p835(x) == ours  # deterministic


@needs_dnsmos
def test_clean_scores_above_noisy_and_more_noise_scores_lower(pair):
    clean, noisy = pair
    scores = [dnsmos.dnsmos_p835(clean + g * (noisy - clean)) for g in (0.0, 0.3, 1.0)]
    for k in ("bak", "ovrl"):
        seq = [s[k] for s in scores]
        assert all(a > b for a, b in zip(seq, seq[1:])), (k, seq)
    assert 3.0 < scores[0]["ovrl"] < 4.0 and 1.0 < scores[-1]["ovrl"] < 3.0, scores
    for s in scores:
        assert all(1.0 < s[k] <= dnsmos.POLY_MAX[k] for k in s)


@needs_dnsmos
def test_short_input_is_scored_as_itself_repeated(pair):
    """5.6 s is doubled to 11.2 s (>= 9.01 s, two windows): the score equals that of two copies of it."""
    clean, _ = pair
    assert 2 * len(clean) >= 9.01 * 16000 > len(clean)
    a = dnsmos.dnsmos_p835(clean)
    assert a == dnsmos.dnsmos_p835(np.tile(clean, 2))
    assert a != dnsmos.dnsmos_p835(np.concatenate([clean, np.zeros_like(clean)]))  # not zero-padded


@needs_dnsmos
def test_long_input_tail_after_the_last_window_is_not_scored(corpus):
    """A 10.9 s input is one window (0-9.01 s): changing what follows 9.01 s changes nothing."""
    d, rows = corpus
    long = np.concatenate([_read(d, r["clean"]) for r in rows[:6]])[: int(10.9 * 16000)]
    assert len(long) == int(10.9 * 16000)
    other = long.copy()
    other[int(9.01 * 16000):] = _read(d, rows[0]["noisy"])[: len(long) - int(9.01 * 16000)]
    a, b = dnsmos.dnsmos_p835(long), dnsmos.dnsmos_p835(other)
    assert a == b
    changed = long.copy()
    changed[8 * 16000: 9 * 16000] = _read(d, rows[1]["noisy"])[:16000]
    assert dnsmos.dnsmos_p835(changed) != a  # inside the window it does change


@needs_dnsmos
def test_reference_free_in_compute_all(pair):
    clean, noisy = pair
    v1, e1 = compute_all(clean, noisy, metrics=NAMES)
    v0, e0 = compute_all(np.zeros_like(clean), noisy, metrics=NAMES + ["pesq_wb"])
    assert e1 == {} and set(e0) == {"pesq_wb"}  # a silent reference does not matter to DNSMOS
    assert {n: v0[n] for n in NAMES} == v1
    loud = 2.0 * noisy / np.max(np.abs(noisy))
    v, e = compute_all(clean, loud, metrics=NAMES)
    assert all(math.isnan(x) for x in v.values()) and "[-1, 1]" in e["dnsmos_ovrl"]
    bad = noisy.copy()
    bad[10] = np.inf
    v, e = compute_all(clean, bad, metrics=NAMES)
    assert all(math.isnan(x) for x in v.values()) and "NaN or Inf" in e["dnsmos_sig"]
    v, e = compute_all(clean, noisy, sample_rate=8000, metrics=NAMES)
    assert "16000" in e["dnsmos_bak"]


def _run_python(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=str(bench.REPO_ROOT))
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_missing_packages_make_dnsmos_unavailable_not_a_crash():
    """With speechmos not importable: listed, version says unavailable, compute_all records NaN + reason."""
    res = _run_python(
        "import sys, json; sys.modules['speechmos'] = None\n"
        "import numpy as np\n"
        "from bench.metrics.registry import METRICS, metric_versions, compute_all, available_metrics\n"
        "x = np.sin(np.arange(16000) / 10.0) * 0.1\n"
        "v, e = compute_all(x, x + 0.01, metrics=['snr', 'dnsmos_sig', 'dnsmos_ovrl'])\n"
        "print(json.dumps({'v': {k: repr(x) for k, x in v.items()}, 'e': e, 'avail': available_metrics(),\n"
        "  'version': metric_versions()['dnsmos_ovrl']['version'],\n"
        "  'unavailable': METRICS['dnsmos_bak'].unavailable,\n"
        "  'names': list(METRICS)}))\n")
    assert res["names"][-3:] == NAMES
    assert res["v"]["dnsmos_sig"] == res["v"]["dnsmos_ovrl"] == "nan" and res["v"]["snr"] != "nan"
    assert res["e"]["dnsmos_sig"].startswith("MetricUnavailable: DNSMOS needs the optional package(s) "
                                             "speechmos")
    assert "pip install" in res["e"]["dnsmos_ovrl"] and len(res["e"]["dnsmos_ovrl"]) <= 200
    assert res["version"].startswith("unavailable: ") and "speechmos" in res["unavailable"]
    assert not any(n.startswith("dnsmos") for n in res["avail"]) and "csig" in res["avail"]


@needs_dnsmos
def test_runs_offline(corpus):
    """Every socket connection refused: DNSMOS still loads its bundled models and scores."""
    d, rows = corpus
    res = _run_python(
        "import json, socket\n"
        "def refuse(*a, **k): raise OSError('network disabled by the test')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "import soundfile as sf\n"
        "from bench.metrics.dnsmos import dnsmos_p835\n"
        f"x, _ = sf.read({str(d / rows[0]['noisy'])!r}, dtype='float64')\n"
        "print(json.dumps(dnsmos_p835(x)))\n")
    assert set(res) == {"sig", "bak", "ovrl"} and all(1.0 < v < 5.0 for v in res.values())


@pytest.mark.slow
@needs_dnsmos
def test_corpus_means_clean_and_noisy(corpus):
    """All 35 pairs (about 2 min): clean OVRL 3.39, noisy 2.55 (measured, see the report)."""
    d, rows = corpus
    clean = [dnsmos.dnsmos_p835(_read(d, r["clean"])) for r in rows]
    noisy = [dnsmos.dnsmos_p835(_read(d, r["noisy"])) for r in rows]
    assert np.mean([s["ovrl"] for s in clean]) == pytest.approx(3.39, abs=0.01)
    assert np.mean([s["ovrl"] for s in noisy]) == pytest.approx(2.55, abs=0.01)
    assert sum(c["bak"] > n["bak"] for c, n in zip(clean, noisy)) >= 33
