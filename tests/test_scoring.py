"""Tests of the scorer (bench.scoring.score / bench.run.pipeline): the run folder it writes, what adapters
receive, known metric values, and resuming an interrupted scoring.

Everything runs on a tiny *custom* track prepared once per session in a temporary folder from
six real utterances of ../shared/data/vctk-mini (5 short test utterances of p232/p257), so the
tests neither need nor touch the repository's prepared/ and results/. Tests that only need
fast metrics score with ``FAST`` (SI-SDR and SNR); one run scores every metric.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from bench.adapters.base import Adapter, Found, get_adapter
from bench.core.audio import to_pcm16
from bench.data.prepare import prepare
from bench.data.prepared import PreparedTrack
from bench.data.tracks import Track
from bench.core.errors import BenchError
from bench.metrics.registry import METRICS, PESQ_WB_MAX, compute_all
from bench.run.pipeline import RunOptions, run
from bench.protocol import Protocol
from bench.scoring.results import check_against_benchmark, load_run, sha256_bytes, validate_summary
from bench.scoring.score import PARTIAL, score
from bench.adapters.speed import RTF_SECONDS
from bench.scoring.suite import Evaluation

FAST = ["si_sdr", "snr"]
FAST_V1 = ["pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "snr"]  # the metrics of results schema v1
RTF_LEN = int(RTF_SECONDS * 16000)  # the fixed input of the speed measurement
TINY_FILES = {  # the shortest real files of each speaker (about 2 s each for test/valid)
    "test": {"p232": ["p232_043", "p232_052", "p232_170"], "p257": ["p257_054", "p257_143"]},
    "valid": {"p287": ["p287_001"]},
    "train": {"p225": ["p225_022"]},
}
TEST_IDS = sorted(u for spk in TINY_FILES["test"].values() for u in spk)


def tiny_track_spec(name: str = "tiny-real") -> dict:
    return {
        "name": name, "version": 1, "split_id": f"{name}-v1", "description": "test track over real vctk-mini files",
        "corpus": {"name": "vctk-mini subset", "version": "0.80", "layout": "0.80", "subdir": name},
        "download": None, "manifest": None,
        "splits": {split: sorted(spk) for split, spk in TINY_FILES.items()},
    }


@pytest.fixture(scope="session")
def tiny_pt(vctk_mini, tmp_path_factory) -> PreparedTrack:
    """A prepared tiny custom track (VCTK 0.80 layout) made from real vctk-mini FLAC files."""
    base = tmp_path_factory.mktemp("tiny")
    corpus = base / "corpus" / "tiny-real"
    for spks in TINY_FILES.values():
        for spk, utts in spks.items():
            (corpus / "wav48" / spk).mkdir(parents=True)
            for u in utts:
                shutil.copyfile(vctk_mini / "wav48" / spk / f"{u}.flac", corpus / "wav48" / spk / f"{u}.flac")
    track = Track(tiny_track_spec())
    return prepare(track, Protocol.load(), corpus, base / "prepared", jobs=2)


@pytest.fixture(scope="session")
def length_to_utt(tiny_pt) -> dict[int, str]:
    lengths = {len(tiny_pt.load_noisy("test", u)): u for u in tiny_pt.utt_ids("test")}
    assert len(lengths) == len(TEST_IDS) and RTF_LEN not in lengths, "test utterance lengths must identify them"
    return lengths


@pytest.fixture(scope="session")
def noisy_run(tiny_pt, tmp_path_factory) -> Path:
    """`bench run --model noisy` on the tiny track (every metric), through bench.run.pipeline.run."""
    results = tmp_path_factory.mktemp("results")
    return run(get_adapter("noisy"), tiny_pt,
               RunOptions(run_id="r1", device="cpu", jobs=2, results_dir=results, leaderboard=False))


@pytest.fixture(scope="session")
def reference_fast(tiny_pt, tmp_path_factory) -> Path:
    """An uninterrupted scoring of the identity with the FAST metrics: what resumed runs must equal."""
    out = tmp_path_factory.mktemp("reference") / "run"
    return _score(tiny_pt, out, IdentityAdapter(), _Model())


# ---------------------------------------------------------------------------------------------
# small test adapters
class _Model(torch.nn.Module):
    """Identity that calls `hook(x)` on every batch first (to count or interrupt)."""

    def __init__(self, hook=None):
        super().__init__()
        self.hook = hook

    def forward(self, x):
        if self.hook is not None:
            self.hook(x)
        return x


class IdentityAdapter(Adapter):
    name = "test-identity"
    description = "identity (test)"

    def __init__(self):
        self.cleans = []  # (input length, clean argument) of every call

    def build(self):
        return _Model()

    def enhance(self, model, noisy, clean=None):
        self.cleans.append((noisy.shape[-1], clean))
        return model(noisy)


class CleanOracle(Adapter):
    name = "test-clean-oracle"
    description = "returns the clean reference (test)"
    oracle = True

    def __init__(self):
        self.cleans = []

    def build(self):
        return _Model()

    def enhance(self, model, noisy, clean=None):
        self.cleans.append((noisy.shape[-1], clean))
        assert clean is not None and clean.shape == noisy.shape
        return clean.clone()


def _found(adapter: Adapter) -> Found:
    return Found(adapter=adapter, kind="submission", path=Path(__file__))


def _score(pt, out, adapter, model, metrics=FAST, run_id="r1", jobs=2) -> Path:
    return score(_found(adapter), model, Evaluation("main", pt), out, run_id=run_id, config={"test": True},
                 budget={"trained": False}, speed=SPEED, weights=None, training=None, ship_outputs=True,
                 metrics=tuple(metrics), jobs=jobs, device="cpu")


SPEED = {"rtf_cpu_1thread": 0.0, "rtf_input_seconds": RTF_SECONDS, "causal": False, "latency_ms": None,
         "rtf_stream": None, "stream_chunk_samples": None}


def _interrupt_after(n: int):
    """A hook that lets `n` utterances through, then raises KeyboardInterrupt (a Ctrl-C in the model)."""
    calls = []

    def hook(x):
        if x.shape[-1] == RTF_LEN:
            return
        calls.append(x.shape[-1])
        if len(calls) > n:
            raise KeyboardInterrupt

    return hook


def _counter(calls: list):
    def hook(x):
        if x.shape[-1] != RTF_LEN:
            calls.append(x.shape[-1])

    return hook


def _partial_ids(out: Path) -> list[str]:
    """The utterances of a partial scoring file (its first line is the model's fingerprint)."""
    ids = []
    for line in (out / PARTIAL).read_text().splitlines()[1:]:
        try:
            ids.append(json.loads(line)["utt_id"])
        except (json.JSONDecodeError, KeyError):
            pass
    return sorted(ids)


# ---------------------------------------------------------------------------------------------
# the complete run folder
def test_run_folder_is_complete_and_validates(noisy_run, tiny_pt):
    names = sorted(p.name for p in noisy_run.iterdir())
    assert names == ["config.json", "enhanced", "env.json", "per_utterance.csv", "summary.json"]  # no partial left
    summary = json.loads((noisy_run / "summary.json").read_text())
    validate_summary(summary)
    assert summary["run_id"] == "r1" and noisy_run.name == "r1" and noisy_run.parent.name == "noisy"
    assert summary["model"]["name"] == "noisy" and summary["model"]["kind"] == "baseline"
    assert summary["model"]["parameters"] == 0 and summary["model"]["oracle"] is False
    assert summary["benchmark"]["protocol"] == tiny_pt.protocol.record()
    assert summary["benchmark"]["track"] == tiny_pt.track.record(tiny_pt.root)
    assert summary["benchmark"]["track"]["frozen"] is False and summary["benchmark"]["split"] == "test"
    assert list(summary["metrics"]) == list(METRICS)
    assert set(summary["metric_versions"]) == set(METRICS)
    assert summary["budget"]["trained"] is False
    assert summary["speed"]["rtf_cpu_1thread"] >= 0 and summary["speed"]["rtf_input_seconds"] == 10.0

    raw = (noisy_run / "per_utterance.csv").read_bytes()
    assert sha256_bytes(raw) == summary["files"]["per_utterance_sha256"]
    df = pd.read_csv(noisy_run / "per_utterance.csv", dtype={"utt_id": str})
    assert list(df["utt_id"]) == TEST_IDS
    assert list(df.columns) == ["utt_id", "seconds", *METRICS, *[f"noisy_{m}" for m in METRICS], "output_sha256",
                                "errors"]
    for m, s in summary["metrics"].items():  # the summary is what per_utterance.csv gives
        assert s["mean"] == pytest.approx(df[m].mean(), abs=1e-9)
        assert s["n"] == len(TEST_IDS) and s["failures"] == 0
    assert summary["counts"] == {"utterances": len(TEST_IDS), "failed_utterances": 0,
                                 "audio_seconds": pytest.approx(df["seconds"].sum(), abs=1e-3)}
    assert json.loads((noisy_run / "config.json").read_text())["model"] == "noisy"
    env = json.loads((noisy_run / "env.json").read_text())
    assert env and isinstance(env, dict)

    # load_run + the benchmark checks accept it (against the tiny track's own record)
    r = load_run(noisy_run)
    check_against_benchmark(r, protocol=tiny_pt.protocol, track_record=tiny_pt.track.record(tiny_pt.root),
                            test_ids=tiny_pt.utt_ids("test"))


def test_every_output_is_shipped_and_hashed(noisy_run, tiny_pt):
    """The ranked set ships every output as 16-bit FLAC; per_utterance.csv holds the hash of its samples."""
    from bench.core.audio import sha256_pcm16

    summary = json.loads((noisy_run / "summary.json").read_text())
    assert summary["outputs"]["shipped"] is True and summary["outputs"]["dir"] == "enhanced"
    files = sorted(p.name for p in (noisy_run / "enhanced").iterdir())
    assert files == [f"{u}.flac" for u in TEST_IDS]
    df = pd.read_csv(noisy_run / "per_utterance.csv", dtype={"utt_id": str, "output_sha256": str}).set_index("utt_id")
    for u in TEST_IDS:
        q, sr = sf.read(str(noisy_run / "enhanced" / f"{u}.flac"), dtype="int16")
        assert sr == 16000 and q.dtype == np.int16
        np.testing.assert_array_equal(q, to_pcm16(tiny_pt.load_noisy("test", u)))  # identity output, 16 bit
        assert df.loc[u, "output_sha256"] == sha256_pcm16(q)


def test_identity_scores_exactly_the_noisy_input(noisy_run, tiny_pt):
    summary = json.loads((noisy_run / "summary.json").read_text())
    for m, s in summary["metrics"].items():
        assert s["delta"] == 0.0 and s["delta_ci_low"] == 0.0 and s["delta_ci_high"] == 0.0, m
        assert s["mean"] == s["noisy_mean"], m
        assert s["ci_low"] <= s["mean"] <= s["ci_high"], m
    df = pd.read_csv(noisy_run / "per_utterance.csv", dtype={"utt_id": str})
    for m in METRICS:
        np.testing.assert_array_equal(df[m].to_numpy(), df[f"noisy_{m}"].to_numpy())


def test_per_utterance_values_are_the_metrics_of_the_prepared_audio(noisy_run, tiny_pt):
    """Known values: each row equals compute_all(clean, noisy) on the prepared files (CSV keeps 6 decimals)."""
    df = pd.read_csv(noisy_run / "per_utterance.csv", dtype={"utt_id": str}).set_index("utt_id")
    for utt in TEST_IDS[:2]:
        clean, noisy = tiny_pt.load_clean("test", utt), tiny_pt.load_noisy("test", utt)
        vals, errs = compute_all(clean, noisy)
        assert errs == {}
        for m, v in vals.items():
            assert df.loc[utt, m] == pytest.approx(v, abs=6e-7), (utt, m)
        assert df.loc[utt, "seconds"] == pytest.approx(len(clean) / 16000, abs=1e-4)
    # the noisy test set is degraded but intelligible: plausible ranges for this protocol
    assert 1.0 < df["pesq_wb"].mean() < 3.0 and 0.6 < df["stoi"].mean() < 1.0


def test_finished_run_is_not_overwritten(noisy_run, tiny_pt):
    with pytest.raises(BenchError, match="already holds a finished run"):
        run(get_adapter("noisy"), tiny_pt, RunOptions(run_id="r1", device="cpu", jobs=2,
                                                      results_dir=noisy_run.parents[3], leaderboard=False))


# ---------------------------------------------------------------------------------------------
# what adapters receive
def test_oracle_receives_the_clean_reference(tiny_pt, tmp_path):
    """An oracle that returns the clean reference scores the metrics' maxima (known values)."""
    adapter = CleanOracle()
    out = _score(tiny_pt, tmp_path / "oracle", adapter, adapter.build(), metrics=["pesq_wb", "stoi", "si_sdr", "snr"])
    scored = [(n, c) for n, c in adapter.cleans if n != RTF_LEN]
    assert len(scored) >= len(TEST_IDS) and all(c is not None for _, c in scored)
    df = pd.read_csv(out / "per_utterance.csv", dtype={"utt_id": str})
    np.testing.assert_allclose(df["si_sdr"], 100.0, atol=1e-4)  # identical signals: the +100 dB cap
    np.testing.assert_allclose(df["snr"], 100.0, atol=1e-4)
    np.testing.assert_allclose(df["pesq_wb"], PESQ_WB_MAX, atol=1e-3)  # 4.644, the P.862.2 maximum
    np.testing.assert_allclose(df["stoi"], 1.0, atol=1e-6)
    s = json.loads((out / "summary.json").read_text())
    assert s["model"]["oracle"] is True
    assert s["metrics"]["pesq_wb"]["delta"] > 1.0  # far above the noisy input


def test_non_oracle_never_receives_the_clean_reference(tiny_pt, tmp_path):
    adapter = IdentityAdapter()
    _score(tiny_pt, tmp_path / "id", adapter, adapter.build())
    scored = [c for n, c in adapter.cleans if n != RTF_LEN]
    assert len(scored) >= len(TEST_IDS) and all(c is None for c in scored)


def test_wrong_output_shape_is_refused(tiny_pt, tmp_path):
    class Cropping(IdentityAdapter):
        name = "test-cropping"

        def enhance(self, model, noisy, clean=None):
            return noisy[..., :-1]

    with pytest.raises(BenchError, match="output shape"):
        _score(tiny_pt, tmp_path / "crop", Cropping(), _Model())
    assert not (tmp_path / "crop" / "summary.json").exists()


# ---------------------------------------------------------------------------------------------
# resume after interruption
def _assert_same_results(out: Path, reference: Path) -> None:
    assert (out / "per_utterance.csv").read_bytes() == (reference / "per_utterance.csv").read_bytes()
    s, ref = json.loads((out / "summary.json").read_text()), json.loads((reference / "summary.json").read_text())
    assert s["metrics"] == ref["metrics"] and s["counts"] == ref["counts"]
    assert not (out / PARTIAL).exists()
    load_run(out)


def test_interrupted_scoring_resumes_without_recomputing(tiny_pt, tmp_path, reference_fast, length_to_utt):
    out = tmp_path / "run"
    n = 2
    with pytest.raises(KeyboardInterrupt):
        _score(tiny_pt, out, IdentityAdapter(), _Model(_interrupt_after(n)))
    assert not (out / "summary.json").exists()
    # every utterance enhanced before the interruption is kept (the workers finish their metrics)
    assert _partial_ids(out) == TEST_IDS[:n]
    assert len((out / PARTIAL).read_text().splitlines()) == n + 1   # the model's fingerprint, then one row each

    calls: list[int] = []
    _score(tiny_pt, out, IdentityAdapter(), _Model(_counter(calls)))
    assert sorted(length_to_utt[c] for c in calls) == TEST_IDS[n:]  # only the remaining utterances
    _assert_same_results(out, reference_fast)
    assert (out / "enhanced" / "p232_170.flac").exists()


def test_interruption_before_the_listening_file_then_resume(tiny_pt, tmp_path, reference_fast, length_to_utt):
    """Interrupted after the listening utterance was scored: the resumed run does not enhance it again."""
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _score(tiny_pt, out, IdentityAdapter(), _Model(_interrupt_after(3)))
    assert _partial_ids(out) == TEST_IDS[:3] and (out / "enhanced" / "p232_170.flac").exists()
    calls: list[int] = []
    _score(tiny_pt, out, IdentityAdapter(), _Model(_counter(calls)))
    assert sorted(length_to_utt[c] for c in calls) == TEST_IDS[3:]
    _assert_same_results(out, reference_fast)


def test_truncated_last_line_is_recomputed(tiny_pt, tmp_path, reference_fast, length_to_utt):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _score(tiny_pt, out, IdentityAdapter(), _Model(_interrupt_after(3)))
    lines = (out / PARTIAL).read_text().splitlines()
    assert len(lines) == 4 and "model_fingerprint" in json.loads(lines[0])
    cut = json.loads(lines[-1])["utt_id"]
    (out / PARTIAL).write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # a cut write
    assert _partial_ids(out) == sorted(json.loads(line)["utt_id"] for line in lines[1:-1])

    # interrupted again after one utterance: the row written after the cut line must be readable
    calls: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        _score(tiny_pt, out, IdentityAdapter(), _Model(_interrupt_after(1)))
    assert cut in _partial_ids(out) and len(_partial_ids(out)) == 3

    _score(tiny_pt, out, IdentityAdapter(), _Model(_counter(calls)))
    assert sorted(length_to_utt[c] for c in calls) == TEST_IDS[3:]
    _assert_same_results(out, reference_fast)


def test_partial_scores_of_another_model_are_discarded(tiny_pt, tmp_path, reference_fast, length_to_utt):
    """Scoring interrupted, then resumed with another model (here: another configuration record, as after
    more training): the rows of the first model are not reused; every utterance is scored again."""
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        score(_found(IdentityAdapter()), _Model(_interrupt_after(3)), Evaluation("main", tiny_pt), out, run_id="r1",
              config={"test": "first model"}, budget={"trained": False}, speed=SPEED, weights=None, training=None,
              ship_outputs=True, metrics=tuple(FAST), jobs=2)
    assert len(_partial_ids(out)) == 3
    calls: list[int] = []
    _score(tiny_pt, out, IdentityAdapter(), _Model(_counter(calls)))
    assert sorted(length_to_utt[c] for c in calls) == TEST_IDS   # nothing reused
    _assert_same_results(out, reference_fast)


def test_garbage_partial_lines_are_ignored(tiny_pt, tmp_path, reference_fast, length_to_utt):
    out = tmp_path / "run"
    out.mkdir()
    (out / PARTIAL).write_text('not json\n{"no_utt_id": 1}\n\n')
    calls: list[int] = []
    _score(tiny_pt, out, IdentityAdapter(), _Model(_counter(calls)))
    assert sorted(length_to_utt[c] for c in calls) == TEST_IDS
    _assert_same_results(out, reference_fast)


def test_jobs_do_not_change_results(tiny_pt, tmp_path, reference_fast):
    out = _score(tiny_pt, tmp_path / "one", IdentityAdapter(), _Model(), jobs=1)
    _assert_same_results(out, reference_fast)


# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_scoring_reproduces_the_committed_noisy_run(tmp_path):
    """`bench run --model noisy` on the prepared vctk-mini gives the committed per_utterance.csv byte for byte."""
    from bench.corpora.root import prepared_root
    from bench.data.tracks import load_track
    from bench.scoring.results import RESULTS_DIR, find_run

    pt = PreparedTrack(load_track("vctk-mini"), Protocol.load(), prepared_root(None))
    if not pt.is_prepared:
        pytest.skip(f"vctk-mini is not prepared in {pt.root} (`bench data prepare --track vctk-mini`)")
    out = run(get_adapter("noisy"), pt, RunOptions(run_id="r1", device="cpu", results_dir=tmp_path / "results",
                                                   leaderboard=False))
    ref = find_run("noisy", "vctk-mini", RESULTS_DIR)
    if json.loads((ref / "summary.json").read_text())["schema_version"] == 1:   # the archived v1 run: same scores
        cols = ["utt_id", *[m for c in ("", "noisy_") for m in (c + n for n in FAST_V1)]]
        a, b = pd.read_csv(out / "per_utterance.csv")[cols], pd.read_csv(ref / "per_utterance.csv")[cols]
        pd.testing.assert_frame_equal(a, b)
        return
    assert (out / "per_utterance.csv").read_bytes() == (ref / "per_utterance.csv").read_bytes()
    s, s_ref = json.loads((out / "summary.json").read_text()), json.loads((ref / "summary.json").read_text())
    assert s["metrics"] == s_ref["metrics"] and s["counts"] == s_ref["counts"]
    # the committed run was made on the archived split vctk-mini-v1: same test files, same noisy audio
    assert s["benchmark"]["protocol"] == s_ref["benchmark"]["protocol"] and s["benchmark"]["split"] == "test"
    assert s["benchmark"]["track"] == pt.track.record() and s_ref["benchmark"]["track"]["split_id"] in (
        "vctk-mini-v1", pt.track.split_id)
    track = load_track("vctk-mini")
    check_against_benchmark(load_run(out), protocol=Protocol.load(), track_record=track.record(),
                            test_ids=[u.utt_id for u in track.utterances(split="test")])
