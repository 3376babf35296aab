"""Tests written against the mutants a hand-made mutation audit of the fast suite left alive or nearly
(issue 17): each test here fails on its mutant, and where possible checks that it would (the altered
computation is run too and must miss the reference).

- scoring without the 16-bit quantization and clipping of model outputs;
- the pinned resampler with another rolloff (0.94, 0.85), filter width, beta or method, on real 48 kHz
  speech against a committed reference (tests/golden/resampler-p239_001.csv);
- an off-by-one at the upper edges of `zero_bands` (frequency and time);
- STOI computed as extended STOI (a reference pair where the two differ by 0.53);
- (issue 26) `compare_scores` without its per-utterance check (``if worst > per_utt``), and the board's
  `check_folder` without its refusal of a set no track evaluates (``if role is None: raise``:
  tests/test_forgery.py::test_a_run_of_no_evaluation_set_is_refused builds that folder).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.adapters.base import Adapter, Found
from bench.core.audio import RESAMPLER, from_pcm16, resample, to_pcm16
from bench.metrics.registry import compute_all
from bench.protocol import Protocol
from bench.protocol import manipulations as M
from bench.protocol.manipulations import Context
from bench.scoring.score import enhance_one, score

from conftest import make_tiny_prepared, missing_shared, speech_like

GOLDEN = Path(__file__).parent / "golden"


# ---------------------------------------------------------------------------------------------
# scoring quantizes and clips model outputs
class Loud(torch.nn.Module):
    """3 x the input plus a tiny offset: outputs off the 16-bit grid and beyond full scale."""

    def forward(self, x):
        return 3.0 * x + 1e-5


class LoudAdapter(Adapter):
    name = "test-loud"
    description = "3 x input (test)"

    def build(self):
        return Loud()


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory):
    return make_tiny_prepared(tmp_path_factory.mktemp("mutants"), "tiny-mutants", duration=0.8)


def _found():
    return Found(adapter=LoudAdapter(), kind="submission", path=Path(__file__))


def test_enhanced_outputs_are_16_bit_and_clipped(tiny_pt):
    utt = tiny_pt.utt_ids("test")[0]
    noisy = tiny_pt.load_noisy("test", utt)
    raw = 3.0 * noisy.astype(np.float64) + 1e-5
    assert raw.max() > 1.0 and not np.allclose(raw * 32768, np.round(raw * 32768))  # the input is a test
    y = enhance_one(_found(), Loud(), noisy, None, "cpu")
    assert np.array_equal(y * 32768.0, np.round(y * 32768.0)), "scored audio must be on the 16-bit grid"
    assert y.max() == np.float32(32767 / 32768) and y.min() >= -1.0, "scored audio must be clipped to int16"
    assert np.array_equal(y, from_pcm16(to_pcm16(raw)))


def test_scores_are_of_the_quantized_clipped_output(tiny_pt, tmp_path):
    """The per-utterance SNR is that of the 16-bit clipped output, which differs clearly from the raw one."""
    import pandas as pd

    from bench.adapters.speed import RTF_SECONDS
    from bench.scoring.suite import Evaluation

    speed = {"rtf_cpu_1thread": 0.0, "rtf_input_seconds": RTF_SECONDS, "causal": False, "latency_ms": None,
             "rtf_stream": None, "stream_chunk_samples": None}
    out = score(_found(), Loud(), Evaluation("main", tiny_pt), tmp_path / "run", run_id="r", config={"test": True},
                budget={"trained": False}, speed=speed, weights=None, training=None, ship_outputs=False,
                metrics=("snr", "si_sdr"), jobs=1)
    df = pd.read_csv(out / "per_utterance.csv", dtype={"utt_id": str})
    for row in df.itertuples():
        clean, noisy = tiny_pt.load_clean("test", row.utt_id), tiny_pt.load_noisy("test", row.utt_id)
        raw = (3.0 * noisy.astype(np.float64) + 1e-5).astype(np.float32)
        stored = compute_all(clean, from_pcm16(to_pcm16(raw)), metrics=["snr"])[0]["snr"]
        unclipped = compute_all(clean, raw, metrics=["snr"])[0]["snr"]
        assert row.snr == pytest.approx(stored, abs=1e-6)   # per_utterance.csv keeps 6 decimals
        assert abs(unclipped - stored) > 1e-3, "the test needs outputs whose clipping changes the stored score"


# ---------------------------------------------------------------------------------------------
# the pinned resampler on real 48 kHz speech
RESAMPLER_SOURCE = "vctk-mini/wav48/p239/p239_001.flac"


def _block_features(y: np.ndarray) -> dict[str, np.ndarray]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_resampler_reference", Path(__file__).parents[1] / "scripts" /
                                                  "make_resampler_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.block_features(y)
    return {k: np.array([r[k] for r in rows]) for k in ("rms", "high_db", "first")}


def _reference() -> dict[str, np.ndarray]:
    with open(GOLDEN / "resampler-p239_001.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("rms", "high_db", "first")}


def _matches(feats: dict, ref: dict) -> bool:
    return (len(feats["rms"]) == len(ref["rms"])
            and np.allclose(feats["rms"], ref["rms"], rtol=1e-5, atol=1e-9)
            and np.allclose(feats["high_db"], ref["high_db"], atol=0.01)
            and np.allclose(feats["first"], ref["first"], atol=2e-6))


@pytest.fixture(scope="module")
def p239(shared_data):
    import soundfile as sf

    path = shared_data / RESAMPLER_SOURCE
    if not path.exists():
        missing_shared(f"real 48 kHz recording not found: {path}")
    x, sr = sf.read(str(path), dtype="float32")
    assert sr == 48000
    return x


def test_pinned_resampler_matches_the_committed_reference_on_real_48k_speech(p239):
    feats = _block_features(resample(p239, 48000, 16000))
    ref = _reference()
    assert len(ref["rms"]) == 35
    assert _matches(feats, ref)


@pytest.mark.parametrize("change", [{"rolloff": 0.94}, {"rolloff": 0.85}, {"lowpass_filter_width": 63},
                                    {"beta": 14.0}, {"resampling_method": "sinc_interp_hann"}])
def test_another_resampler_misses_the_reference(p239, change):
    """The comparison is sharp enough: each of these changes of the pinned parameters fails it."""
    import torchaudio.functional as AF

    params = {k: v for k, v in RESAMPLER.items() if k != "implementation"}
    params.update(change)
    y = AF.resample(torch.from_numpy(p239.astype(np.float64)), 48000, 16000, **params).numpy().astype(np.float32)
    assert not _matches(_block_features(y), _reference())


# ---------------------------------------------------------------------------------------------
# zero_bands reaches its upper edges exactly (and no further)
CTX = Context(sample_rate=16000, n_fft=512, hop_length=128, clean_power=1.0)


def _single_rectangles(params: dict, n_frames: int, seeds: int = 3000):
    X = np.ones((257, n_frames), dtype=complex)
    lam = params["rate_per_second"] * n_frames * CTX.hop_length / CTX.sample_rate
    for seed in range(seeds):
        if int(np.random.default_rng(seed).poisson(lam)) != 1:  # the op's first draw: one rectangle
            continue
        fz, tz = np.nonzero(M.zero_bands(X, np.random.default_rng(seed), CTX, **params) == 0)
        yield fz.min(), fz.max() + 1, tz.min(), tz.max() + 1


@pytest.mark.parametrize("freq_range, lo_bin, hi_bin", [
    (None, 0, 257),              # the spec's own range, 0-8000 Hz: up to and including the Nyquist bin
    ([1000, 4000], 32, 129),     # bin 128 is 4000 Hz exactly: included
    ([7000, 8000], 224, 257),
])
def test_zero_bands_reach_the_upper_edges(freq_range, lo_bin, hi_bin):
    spec = next(m for m in Protocol.load().spec["manipulations"] if m["op"] == "zero_bands")
    params = {k: v for k, v in spec.items() if k != "op"}
    if freq_range:
        params["freq_range_hz"] = freq_range
    n_frames = 62   # 0.5 s: about one rectangle per draw, and the time edge is hit often
    rects = list(_single_rectangles(params, n_frames))
    assert len(rects) > 500
    f0, f1, t0, t1 = (np.array(v) for v in zip(*rects))
    assert f0.min() == lo_bin and f1.max() == hi_bin, (f0.min(), f1.max())
    assert t0.min() == 0 and t1.max() == n_frames, (t0.min(), t1.max())


# ---------------------------------------------------------------------------------------------
# STOI is not extended STOI
#: pystoi 0.4.1 on the pair below (speech_like(3 s, seed 7) + white noise at 0.3 x its peak, seed 11)
STOI_REF, ESTOI_REF = 0.7160747146910059, 0.18292716026798025


def test_stoi_and_estoi_reference_values():
    sr = 16000
    clean = speech_like(3 * sr, sr, 7).astype(np.float32)
    noise = 0.3 * np.random.default_rng(11).standard_normal(len(clean)) * np.abs(clean).max()
    noisy = (clean + noise).astype(np.float32)
    values, errors = compute_all(clean, noisy, sr, ["stoi", "estoi"])
    assert not errors
    assert abs(STOI_REF - ESTOI_REF) > 0.5   # the reference pair tells the two apart
    assert values["stoi"] == pytest.approx(STOI_REF, abs=1e-6)
    assert values["estoi"] == pytest.approx(ESTOI_REF, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# under CI, missing shared data fails the run instead of skipping
def test_missing_shared_data_fails_under_ci_and_skips_elsewhere(tmp_path):
    import os
    import subprocess
    import sys

    tests = Path(__file__).parent
    (tmp_path / "conftest.py").write_text(
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('bench_tests_conftest', {str(tests / 'conftest.py')!r})\n"
        "mod = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(mod)\n"
        "shared_data, vctk_mini = mod.shared_data, mod.vctk_mini\n")
    (tmp_path / "test_needs_data.py").write_text("def test_it(vctk_mini):\n    assert vctk_mini.is_dir()\n")
    base = {k: v for k, v in os.environ.items() if k != "CI"}
    base.update(BENCH_DATA_ROOT=str(tmp_path / "nowhere"), PYTHONPATH=str(Path(__file__).parents[1]))

    def pytest_run(**extra):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
                              capture_output=True, text=True, env={**base, **extra}, cwd=tmp_path, timeout=300)

    local = pytest_run()
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    ci = pytest_run(CI="true")
    assert ci.returncode == 1 and "1 error" in ci.stdout, ci.stdout
    assert "CI=true: the shared real-speech data is required" in ci.stdout


# ---------------------------------------------------------------------------------------------
# (issue 26) the per-utterance check of `bench verify`'s score comparison
@pytest.mark.parametrize("table, means", [("RESCORE_TOL", False), ("REENHANCE_TOL", True)])
def test_compare_scores_fails_one_utterance_beyond_its_tolerance(table, means):
    """One utterance of a real run off by 2x its per-utterance tolerance, the mean within its own: only the
    per-utterance check sees it (re-scoring has no other)."""
    from bench.scoring.results import RESULTS_DIR, load_run
    from bench.verify import evidence
    from bench.verify.evidence import Check, compare_scores

    run = load_run(RESULTS_DIR / "vctk-mini/stft-v1/spectral-subtraction/20261201-040758-318c22d7")
    tol = getattr(evidence, table)
    fresh = {r.utt_id: {m: getattr(r, m) for m in run.metric_names} for r in run.per_utterance.itertuples()}
    same = Check("same")
    compare_scores(run, fresh, tol, same, "re-scored", means=means)
    assert same.ok, same.problems
    per_utt = tol["si_sdr"][0] if means else tol["default"]
    first = next(iter(fresh))
    fresh[first]["si_sdr"] += 2 * per_utt
    if means:   # the mean moves by 2 x 0.25 / 30 = 0.017, within its tolerance of 0.05
        assert 2 * per_utt / len(fresh) < tol["si_sdr"][1]
    off = Check("off")
    compare_scores(run, fresh, tol, off, "re-scored", means=means)
    assert [p for p in off.problems if "si_sdr differs by up to" in p and "per utterance" in p], off.problems
