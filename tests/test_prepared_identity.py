"""Prepared audio is keyed by what made it: the noisy folder by the protocol's hash, prepared.json checked
on every load; a recorded-noise track (clean/noisy pairs) round trip; the evaluation sets of a track."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch  # noqa: F401  (imported once here, so forked prepare workers do not each import it)

from bench.core.audio import read_audio, resample, to_pcm16
from bench.data.evaluation import evaluation_sets
from bench.data.manifest import read_manifest
from bench.data.prepare import describe_sources, prepare
from bench.data.prepared import PreparedTrack
from bench.data.recorded import RecordedNoise, noisy_manifest_bytes
from bench.data.tracks import Track, load_track
from bench.data.verify import verify_prepared, verify_sources
from bench.core.errors import DataError, ManifestMismatch
from bench.protocol import Protocol

from conftest import make_vctk_corpus, speech_like, track_spec, write_audio

PROTO = Protocol.load()


@pytest.fixture
def tiny(tmp_path):
    corpus = make_vctk_corpus(tmp_path / "corpus", "0.92", ["p225", "p226", "p227", "p228"], 2, duration=0.3)
    track = Track(track_spec("tiny", "0.92"))
    pt = prepare(track, PROTO, corpus, tmp_path / "prep", jobs=2)
    return {"corpus": corpus, "track": track, "pt": pt, "prep": tmp_path / "prep"}


def edited(spec_change) -> Protocol:
    spec = copy.deepcopy(PROTO.spec)
    spec_change(spec)
    return Protocol.from_spec(spec)


def test_an_edited_spec_never_finds_the_audio_of_the_old_one(tiny):
    pt = tiny["pt"]
    new = edited(lambda s: s["manipulations"][1].__setitem__("prob", 0.2))  # same name, another sha256
    assert new.name == PROTO.name and new.sha256 != PROTO.sha256
    stale = PreparedTrack(tiny["track"], new, tiny["prep"])
    assert stale.noisy_dir != pt.noisy_dir and not stale.is_prepared
    with pytest.raises(DataError, match=rf"not prepared for stft-v1 \(sha256 {new.sha256[:12]}") as ei:
        stale.utt_ids("test")
    assert "bench data prepare --track tiny" in ei.value.hint
    # preparing the edited spec makes new audio in its own folder and records its hash
    fresh = prepare(tiny["track"], new, tiny["corpus"], tiny["prep"], jobs=2)
    assert fresh.info()["protocol"]["sha256"] == new.sha256 and pt.info()["protocol"]["sha256"] == PROTO.sha256
    a, b = pt.load_noisy("test", "p227_001"), fresh.load_noisy("test", "p227_001")
    assert not np.array_equal(a, b)
    assert np.array_equal(to_pcm16(b), to_pcm16(new.apply(fresh.load_clean("test", "p227_001"), "p227_001")))


def test_audio_of_another_spec_under_the_folder_name_is_refused(tiny):
    """prepared.json is checked on every load: old audio copied under the new spec's folder name is refused."""
    pt = tiny["pt"]
    new = edited(lambda s: s["manipulations"][5].__setitem__("snr_db", [10.0, 20.0]))
    target = PreparedTrack(tiny["track"], new, tiny["prep"])
    shutil.copytree(pt.noisy_dir, target.noisy_dir)
    assert target.is_prepared
    with pytest.raises(DataError, match=rf"prepared for noise stft-v1 sha256 {PROTO.sha256[:12]}\.\.\., the current "
                                        rf"spec is stft-v1 sha256 {new.sha256[:12]}") as ei:
        target.load_split("test")
    assert "refusing to use audio of another benchmark definition" in str(ei.value)
    rep = verify_prepared(target, jobs=1)
    assert not rep.ok and any("prepared for noise stft-v1" in c for c in rep.changed)
    assert verify_prepared(pt, jobs=1).ok


def test_a_changed_track_version_is_refused_then_reprepared(tiny, tmp_path):
    pt = tiny["pt"]
    spec = track_spec("tiny", "0.92", {"train": ["p225"], "valid": ["p228"], "test": ["p227"]})  # valid p226 -> p228
    v2 = Track({**spec, "version": 2, "split_id": "tiny-v2"})
    # the source manifest of the unfrozen track was written at the first prepare: move it as a freeze would
    (tiny["prep"] / "tiny/source_manifest.csv").unlink()
    fresh_rows = describe_sources(v2, tiny["corpus"], jobs=1)
    from bench.data.manifest import write_manifest

    write_manifest(tiny["prep"] / "tiny/source_manifest.csv", fresh_rows)
    with pytest.raises(DataError, match=r"prepared for split tiny-v1 .*the track is tiny-v2"):
        PreparedTrack(v2, PROTO, tiny["prep"]).utt_ids("valid")
    again = prepare(v2, PROTO, tiny["corpus"], tiny["prep"], jobs=2)
    assert again.utt_ids("valid") == ["p228_001", "p228_002"]
    assert not (pt.clean_dir / "valid/p226_001.wav").exists()  # the old version's audio was removed, not reused
    assert json.loads((again.track_dir / "track.json").read_text())["split_id"] == "tiny-v2"


# ---------------------------------------------------------------------------------------------
# recorded noise: clean/noisy pairs
def make_pairs(root, utts, sr=48000, n=14400):
    for i, u in enumerate(utts):
        clean = speech_like(n, sr, seed=100 + i)
        noisy = np.clip(clean + 0.05 * np.random.default_rng(i).standard_normal(n), -1, 1)
        write_audio(root / "clean" / f"{u}.wav", clean, sr)
        write_audio(root / "noisy" / f"{u}.wav", noisy, sr)
    return root


def pairs_spec(name="pairs", manifest=None):
    return {"name": name, "version": 1, "split_id": f"{name}-v1", "test_only": True,
            "corpus": {"name": "synthetic pairs", "layout": "pairs", "subdir": name},
            "noise": {"kind": "recorded"}, "splits": {"test": ["p232", "p257"]}, "manifest": manifest}


def test_recorded_noise_round_trip(tmp_path):
    corpus = make_pairs(tmp_path / "pairs", ["p232_001", "p232_002", "p257_001", "p999_001"])
    track = Track(pairs_spec())
    rows = describe_sources(track, corpus, jobs=1)
    assert [(r.utt_id, r.path, r.noisy_path) for r in rows] == [
        (u, f"clean/{u}.wav", f"noisy/{u}.wav") for u in ("p232_001", "p232_002", "p257_001")]
    assert all(r.noisy_sha256_pcm16 and r.noisy_sha256_pcm16 != r.sha256_pcm16 for r in rows)
    pt = prepare(track, PROTO, corpus, tmp_path / "prep", jobs=2)  # the protocol is not used: the noise is recorded
    assert isinstance(pt.protocol, RecordedNoise) and pt.noisy_splits == ("test",)
    manifest = read_manifest(tmp_path / "prep/pairs/source_manifest.csv")
    assert manifest == rows  # noisy columns round trip
    rec = pt.protocol.record()
    assert rec["name"] == "recorded" and rec["sha256"] == hashlib.sha256(noisy_manifest_bytes(rows)).hexdigest()
    assert pt.noisy_dir.name == f"recorded-{rec['sha256'][:8]}" and pt.info()["protocol"] == rec
    for r in rows:
        y, sr = read_audio(corpus / r.noisy_path)
        assert np.array_equal(to_pcm16(pt.load_noisy("test", r.utt_id)), to_pcm16(resample(y, sr, 16000)))
        x, sr = read_audio(corpus / r.path)
        assert np.array_equal(to_pcm16(pt.load_clean("test", r.utt_id)), to_pcm16(resample(x, sr, 16000)))
    assert PreparedTrack(track, PROTO.only(0), tmp_path / "prep").protocol == pt.protocol
    assert verify_prepared(pt, jobs=1).ok and verify_sources(track, corpus, rows, jobs=1).ok
    # a changed noisy recording is caught by verify and by a re-prepare
    q, sr = sf.read(str(corpus / "noisy/p257_001.wav"), dtype="int16")
    q[100] ^= 1
    sf.write(str(corpus / "noisy/p257_001.wav"), q, sr, subtype="PCM_16")
    assert verify_sources(track, corpus, rows, jobs=1).changed == [str(corpus / "noisy/p257_001.wav")]
    pt.noisy_path("test", "p257_001").unlink()
    with pytest.raises(ManifestMismatch, match="noisy/p257_001.wav: changed file under the frozen manifest") as ei:
        prepare(track, PROTO, corpus, tmp_path / "prep", jobs=1)
    assert ei.value.changed == ["noisy/p257_001.wav"]


def test_pairs_need_both_files(tmp_path):
    corpus = make_pairs(tmp_path / "pairs", ["p232_001"])
    (corpus / "noisy/p232_001.wav").unlink()
    with pytest.raises(DataError, match="the noisy file of the pair .*p232_001.wav is missing"):
        describe_sources(Track(pairs_spec()), corpus, jobs=1)
    write_audio(corpus / "noisy/p232_001.wav", speech_like(100, 48000, 1), 48000)
    make_pairs(corpus, ["p257_001"])
    with pytest.raises(DataError, match="the noisy file of a pair must match its clean file"):
        describe_sources(Track(pairs_spec()), corpus, jobs=1)


def test_real_vbdemand_sample(shared_data, tmp_path):
    """The 35 real pairs prepare to exactly the committed hashes; clean and noisy are kept as given (16 kHz)."""
    track = load_track("vbdemand-sample")
    rows = track.utterances()
    assert len(rows) == 35 and {r.speaker for r in rows} == {"p232", "p257", "p287"}
    pt = prepare(track, PROTO, shared_data / "vbdemand-sample", tmp_path, jobs=2)
    noisy = {r["utt_id"]: r["sha256_pcm16"] for r in pt.manifest("noisy")}
    assert noisy == {r.utt_id: r.noisy_sha256_pcm16 for r in rows}  # 16 kHz: prepared = source
    assert {r["utt_id"]: r["sha256_pcm16"] for r in pt.manifest("clean")} == {r.utt_id: r.sha256_pcm16 for r in rows}
    rep = verify_prepared(pt, jobs=2)
    assert rep.ok and any("vbdemand-sample.recorded.csv" in n for n in rep.notes)
    assert pt.record()["protocol"]["sha256"] == hashlib.sha256(noisy_manifest_bytes(rows)).hexdigest()


# ---------------------------------------------------------------------------------------------
def test_evaluation_sets_of_vctk_mini(tmp_path):
    sets = evaluation_sets(load_track("vctk-mini"), PROTO, tmp_path)
    assert [(s.key, s.role) for s in sets] == [
        ("vctk-mini", "main"), ("so762-test", "cross-corpus"), ("librispeech-test-other", "cross-corpus"),
        ("vbdemand-sample", "recorded")] + [(f"vctk-mini.stft-v1.only-{op}", "diagnostic")
                                            for op in [m["op"] for m in PROTO.spec["manipulations"]]]
    by = {s.key: s for s in sets}
    assert isinstance(by["vbdemand-sample"].prepared.protocol, RecordedNoise)
    rec = by["so762-test"].record()
    assert rec["track"]["split_id"] == "so762-test-v1" and rec["protocol"] == PROTO.record() and rec["split"] == "test"
    assert by["vctk-mini.stft-v1.only-add_floor"].record()["protocol"]["derived_from"]["keep"] == "add_floor"
    assert all(not s.prepared.is_prepared for s in sets)
    no_diag = evaluation_sets(load_track("vctk-mini"), PROTO, tmp_path, diagnostics=False)
    assert [s.key for s in no_diag][-1] == "vbdemand-sample"
    assert [s.key for s in evaluation_sets(load_track("so762-test"), PROTO, tmp_path)] == ["so762-test"]
