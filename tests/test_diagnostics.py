"""Derived (diagnostic) protocols: one manipulation of stft-v1 alone, with the random draws it has in the
full protocol; their prepared test sets and committed reference hashes."""

from __future__ import annotations

import copy
import csv

import numpy as np
import pytest
import torch  # noqa: F401  (imported once here, so forked prepare workers do not each import it)

from bench.core.audio import from_pcm16, read_audio, sha256_pcm16, to_pcm16
from bench.data.prepare import prepare, prepare_diagnostics
from bench.data.tracks import Track, load_track
from bench.data.verify import verify_prepared
from bench.core.errors import BenchError
from bench.protocol import ONLY, Protocol, canonical_json
from bench.protocol import manipulations as M

from conftest import make_vctk_corpus, speech_like, track_spec

PROTO = Protocol.load()
OPS = [m["op"] for m in PROTO.spec["manipulations"]]
STFT_V1_SHA256 = "ca581922cd91536c5aabafc3f679041b9ef555c8356709366838e86b3c9a7f86"


def full_protocol_with_only(monkeypatch, keep: str) -> None:
    """Make every manipulation of the full protocol except `keep` the identity (its generator is still made)."""
    for op in OPS:
        if op != keep:
            monkeypatch.setitem(M.MANIPULATIONS, op, lambda X, rng, ctx, **params: X)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("stream", ["frozen", "train:0:17:3"])
def test_derived_protocol_reproduces_the_full_protocols_draws(op, stream, monkeypatch):
    x = speech_like(48000, 16000, seed=11).astype(np.float32)
    derived = PROTO.only(op)
    y = derived.apply(x, "p232_005", stream=stream)
    full_protocol_with_only(monkeypatch, op)
    assert np.array_equal(y, PROTO.apply(x, "p232_005", stream=stream)), op  # bit for bit
    monkeypatch.undo()
    assert not np.array_equal(y, PROTO.apply(x, "p232_005", stream=stream))
    assert not np.array_equal(y, x)


def test_the_spawn_key_matters():
    """Manipulation i alone with spawn key 0 (what a one-manipulation copy of the spec would draw) is different."""
    x = speech_like(24000, 16000, seed=12).astype(np.float32)
    spec = copy.deepcopy(PROTO.spec)
    spec["manipulations"] = [spec["manipulations"][1]]
    naive = Protocol.from_spec(spec)
    assert not np.array_equal(naive.apply(x, "u"), PROTO.only("zero_random").apply(x, "u"))
    # but for manipulation 0 the two coincide (same name, same spawn key 0)
    spec["manipulations"] = [PROTO.spec["manipulations"][0]]
    assert np.array_equal(Protocol.from_spec(spec).apply(x, "u"), PROTO.only(0).apply(x, "u"))


def test_derived_spec_identity():
    assert PROTO.sha256 == STFT_V1_SHA256  # deriving changes nothing of the parent
    ds = PROTO.diagnostics()
    assert [d.name for d in ds] == [f"stft-v1{ONLY}{op}" for op in OPS]
    assert len({d.sha256 for d in ds} | {PROTO.sha256}) == 7
    for i, d in enumerate(ds):
        assert d.derived and not PROTO.derived
        assert d.record()["derived_from"] == {"name": "stft-v1", "sha256": STFT_V1_SHA256, "keep": OPS[i], "index": i}
        assert d.spec["seeding"]["name"] == "stft-v1" and d.spec["seeding"]["spawn_keys"] == [i]
        assert d.spec["manipulations"] == [PROTO.spec["manipulations"][i]]
        assert Protocol.load(d.name).sha256 == d.sha256 == Protocol.from_spec(copy.deepcopy(d.spec)).sha256
        assert d.record()["name"] == d.name and d.record()["global_seed"] == 1234
    assert PROTO.only("add_floor").sha256 == PROTO.only(5).sha256


def test_derived_protocol_errors():
    with pytest.raises(BenchError, match="has no single manipulation 'nope'; it has: zero_strongest, zero_random"):
        PROTO.only("nope")
    with pytest.raises(BenchError, match="already derived"):
        PROTO.only(0).only(0)
    with pytest.raises(BenchError, match="unknown protocol 'stft-v9'"):
        Protocol.load("stft-v9.only-zero_bands")
    bad = copy.deepcopy(PROTO.only(2).spec)
    bad["name"] = "stft-v1.only-zero_frames"  # name and kept manipulation disagree
    with pytest.raises(BenchError, match="must be '<parent>.only-<op>'"):
        Protocol.from_spec(bad)
    assert canonical_json(PROTO.only(2).spec) != canonical_json(bad)


# ---------------------------------------------------------------------------------------------
# prepared diagnostic sets
def test_prepare_diagnostics_materializes_the_test_split_of_each_manipulation(tmp_path):
    corpus = make_vctk_corpus(tmp_path / "corpus", "0.92", ["p225", "p226", "p227"], 2, duration=0.3)
    track = Track(track_spec("tiny", "0.92"))
    main = prepare(track, PROTO, corpus, tmp_path / "prep", jobs=2)
    clean_manifest = (main.clean_dir / "manifest.csv").read_bytes()
    sets = prepare_diagnostics(track, PROTO, corpus, tmp_path / "prep", jobs=2)
    assert [s.protocol.name for s in sets] == [d.name for d in PROTO.diagnostics()]
    assert (main.clean_dir / "manifest.csv").read_bytes() == clean_manifest
    for pt in sets:
        assert pt.is_prepared and pt.noisy_splits == ("test",)
        assert pt.noisy_dir.name == f"{pt.protocol.name}-{pt.protocol.sha256[:8]}"
        assert not (pt.noisy_dir / "valid").exists()
        assert [r["utt_id"] for r in pt.manifest("noisy")] == ["p227_001", "p227_002"]
        for u in pt.utt_ids("test"):
            expected = to_pcm16(pt.protocol.apply(pt.load_clean("test", u), u))
            assert np.array_equal(to_pcm16(pt.load_noisy("test", u)), expected)
        assert pt.info()["protocol"]["derived_from"]["name"] == "stft-v1"
        assert verify_prepared(pt, jobs=1).ok
    # a derived protocol prepared on its own over a fresh dir prepares the clean audio too
    alone = prepare(track, PROTO.only("zero_bands"), corpus, tmp_path / "alone", jobs=1)
    assert (alone.noisy_dir / "manifest.csv").read_bytes() == (sets[2].noisy_dir / "manifest.csv").read_bytes()
    assert (alone.clean_dir / "manifest.csv").read_bytes() == clean_manifest


def _reference(path) -> dict[str, str]:
    with open(path, newline="") as fh:
        return {r["utt_id"]: r["sha256_pcm16"] for r in csv.DictReader(fh)}


@pytest.mark.parametrize("op", OPS)
def test_committed_diagnostic_reference_hashes(vctk_mini, op):
    """Recompute 3 of the 30 committed diagnostic test files of each manipulation from the real source."""
    track = load_track("vctk-mini")
    d = PROTO.only(op)
    ref = _reference(track.reference_noisy_path(d.name))
    assert len(ref) == 30 and set(ref) == {u.utt_id for u in track.utterances(split="test")}
    rows = {u.utt_id: u for u in track.utterances(split="test")}
    for utt in ("p232_043", "p257_054", "p232_170"):
        x, sr = read_audio(vctk_mini / rows[utt].path)
        assert sr == 16000  # vctk-mini's test files are 16 kHz: the prepared clean is the source itself
        assert sha256_pcm16(to_pcm16(d.apply(from_pcm16(to_pcm16(x)), utt))) == ref[utt], (op, utt)
