"""Tests of the data layer: audio I/O, VCTK layouts, tracks and manifests, prepare, verify, data root.

Everything runs on real files: tiny synthetic VCTK corpora written in tmp dirs (48 kHz FLAC/WAV in the
0.92 and 0.80 layouts), and the real vctk-mini corpus where it is present.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch  # noqa: F401  (imported once here, so forked prepare workers do not each import it)

import bench.corpora.root as root_mod
import bench.data.tracks as tracks_mod
from bench.core.audio import (RESAMPLER, check_speech, file_sha256_pcm16, from_pcm16, load_16k, read_audio, resample,
                         sha256_pcm16, to_pcm16, write_wav_pcm16)
from bench.corpora.layouts import detect_layout, scan
from bench.data.manifest import COLUMNS, Utterance, fields, manifest_bytes, read_manifest, write_manifest
from bench.data.prepare import describe_sources, prepare
from bench.data.prepared import PreparedTrack
from bench.corpora.root import resolve_data_root
from bench.data.tracks import Track, load_archived, load_track, track_version, validate_track_spec
from bench.data.verify import verify_prepared, verify_sources
from bench.core.errors import AudioError, DataError, ManifestMismatch
from bench.protocol import Protocol

from conftest import make_vctk_corpus, missing_shared, speech_like, track_spec, write_audio

PROTO = Protocol.load()
NOISY = f"stft-v1-{PROTO.sha256[:8]}"  # the noisy folder is keyed by the protocol's hash
FORK = multiprocessing.get_start_method() == "fork"


def tree(root: Path) -> dict[str, int]:
    """Every file under `root` with its mtime (ns)."""
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------
# audio I/O
def test_read_audio_corrupt_file(tmp_path):
    bad = tmp_path / "p225_001_mic1.flac"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match="cannot decode audio") as ei:
        read_audio(bad)
    assert str(bad) in str(ei.value) and ei.value.path == bad
    with pytest.raises(AudioError, match="cannot decode audio"):
        file_sha256_pcm16(bad)


def test_read_audio_empty_and_missing_file(tmp_path):
    empty = tmp_path / "empty.flac"
    empty.touch()
    with pytest.raises(AudioError, match=r"file is empty \(0 bytes\)") as ei:
        read_audio(empty)
    assert str(empty) in str(ei.value)
    with pytest.raises(AudioError, match="file does not exist") as ei:
        read_audio(tmp_path / "nope.wav")
    assert str(tmp_path / "nope.wav") in str(ei.value)


def test_read_audio_header_without_samples(tmp_path):
    path = write_audio(tmp_path / "zero.wav", np.zeros(0), 16000)
    with pytest.raises(AudioError, match="audio has no samples") as ei:
        read_audio(path)
    assert str(path) in str(ei.value)


def test_read_audio_stereo_is_downmixed_with_a_warning(tmp_path, caplog):
    left, right = speech_like(4800, 48000, 1), speech_like(4800, 48000, 2)
    path = write_audio(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 48000)
    with caplog.at_level(logging.WARNING, logger="bench.core.audio"):
        x, sr = read_audio(path)
    assert sr == 48000 and x.shape == (4800,) and x.dtype == np.float32
    q = sf.read(str(path), dtype="float32")[0]
    assert np.allclose(x, q.mean(axis=1), atol=1e-7)
    assert any(str(path) in r.getMessage() and "2 channels, down-mixed" in r.getMessage() for r in caplog.records)
    with pytest.raises(AudioError, match="expected mono audio, got 2 channels"):
        read_audio(path, mono="error")


def test_read_audio_rejects_nan(tmp_path):
    """NaN cannot occur in PCM, but a float WAV can hold it."""
    x = speech_like(1000, 16000, 3)
    x[10] = np.nan
    path = write_audio(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf") as ei:
        read_audio(path)
    assert str(path) in str(ei.value)


def test_check_speech_silence_and_clipping(tmp_path, caplog):
    p = tmp_path / "p232_001.wav"
    with pytest.raises(AudioError, match=r"audio is silent \(RMS -inf dBFS") as ei:
        check_speech(np.zeros(16000, np.float32), p)
    assert str(p) in str(ei.value)
    with pytest.raises(AudioError, match="audio is silent"):
        check_speech(np.full(16000, 1e-4, np.float32), p)  # -80 dBFS
    check_speech(np.full(16000, 1e-3, np.float32), p)  # -60 dBFS: quiet but speech-like level is fine

    x = speech_like(16000, 16000, 4, peak=1.6).astype(np.float32)
    clipped = np.clip(x, -1, 1)
    with pytest.raises(AudioError, match=r"audio is clipped \(\d+\.\d+% of samples at full scale\)") as ei:
        check_speech(clipped, p)
    assert str(p) in str(ei.value) and "clean reference" in str(ei.value)
    with caplog.at_level(logging.WARNING, logger="bench.core.audio"):
        check_speech(clipped, p, allow_clipping=True)
    assert any("clipped" in r.getMessage() and str(p) in r.getMessage() for r in caplog.records)
    # a handful of full-scale peaks (<= 0.1 %) is not "clipped"
    few = speech_like(16000, 16000, 5).astype(np.float32)
    few[:10] = 1.0
    check_speech(few, p)


def test_resampler_is_pinned():
    assert RESAMPLER == {"implementation": "torchaudio.functional.resample", "resampling_method": "sinc_interp_kaiser",
                         "lowpass_filter_width": 64, "rolloff": 0.9475937167399596, "beta": 14.769656459379492}


@pytest.mark.parametrize("n", [48000, 48001, 48002, 19200])
def test_resample_48k_to_16k(n):
    x = speech_like(n, 48000, n).astype(np.float32)
    y = resample(x, 48000, 16000)
    assert y.dtype == np.float32 and y.shape == (-(-n // 3),)  # ceil(n / 3): n/3 when n is a multiple of 3
    assert resample(x, 16000, 16000) is x or np.array_equal(resample(x, 16000, 16000), x)


def test_resample_quality_matches_an_independent_resampler():
    scipy_signal = pytest.importorskip("scipy.signal")
    n = 48000
    x = speech_like(n, 48000, 9)
    y = resample(x.astype(np.float32), 48000, 16000).astype(np.float64)
    ref = scipy_signal.resample_poly(x, 1, 3, window=("kaiser", 14.0))
    mid = slice(400, len(y) - 400)
    snr = 10 * np.log10(np.sum(ref[mid] ** 2) / np.sum((y[mid] - ref[mid]) ** 2))
    assert snr > 35, snr
    # a 1 kHz tone stays a 1 kHz tone
    t = np.arange(n) / 48000
    tone = resample((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 48000, 16000)
    spec = np.abs(np.fft.rfft(tone[2000:-2000] * np.hanning(len(tone) - 4000)))
    assert abs(np.argmax(spec) * 16000 / (len(tone) - 4000) - 1000) < 2


def test_load_16k_and_pcm16_roundtrip(tmp_path):
    x = speech_like(24000, 48000, 10)
    path = write_audio(tmp_path / "a.flac", x, 48000)
    y = load_16k(path)
    assert y.shape == (8000,) and y.dtype == np.float32
    q = write_wav_pcm16(tmp_path / "out" / "a.wav", y)
    assert not tmp_files(tmp_path)
    back, sr = read_audio(tmp_path / "out" / "a.wav")
    assert sr == 16000 and np.array_equal(to_pcm16(back), q)
    assert np.array_equal(to_pcm16(from_pcm16(q)), q)
    assert to_pcm16(np.array([1.0, -1.0, 2.0, 0.5 / 32768])).tolist() == [32767, -32768, 32767, 0]


def test_sha256_pcm16_does_not_depend_on_the_container(tmp_path):
    q = to_pcm16(speech_like(3000, 16000, 11))
    sf.write(str(tmp_path / "a.wav"), q, 16000, subtype="PCM_16")
    sf.write(str(tmp_path / "a.flac"), q, 16000, subtype="PCM_16")
    sf.write(str(tmp_path / "b.flac"), q.astype(np.int32) << 16, 16000, subtype="PCM_24")
    hashes = {file_sha256_pcm16(tmp_path / f) for f in ("a.wav", "a.flac", "b.flac")}
    assert hashes == {sha256_pcm16(q)}
    q2 = q.copy()
    q2[5] += 1
    sf.write(str(tmp_path / "c.wav"), q2, 16000, subtype="PCM_16")
    assert file_sha256_pcm16(tmp_path / "c.wav") != sha256_pcm16(q)


# ---------------------------------------------------------------------------------------------
# corpus layouts
def test_scan_vctk_092_uses_mic1_and_ignores_mic2(make_vctk):
    root = make_vctk("0.92", ["p225", "p226"], n_utts=3)
    (root / "wav48_silence_trimmed" / "p225" / "notes.txt").write_text("not audio")
    (root / "wav48_silence_trimmed" / "p225" / "log.txt").write_text("")
    assert detect_layout(root) == "0.92"
    files = scan(root, ["p225", "p226"])
    assert [f.utt_id for f in files] == ["p225_001", "p225_002", "p225_003", "p226_001", "p226_002", "p226_003"]
    assert files[0].speaker == "p225" and files[0].path == "wav48_silence_trimmed/p225/p225_001_mic1.flac"
    assert all(f.path.endswith("_mic1.flac") for f in files)
    mic2 = scan(root, ["p226"], layout="0.92", mic="mic2")
    assert [f.path for f in mic2][0] == "wav48_silence_trimmed/p226/p226_001_mic2.flac"
    # the two mics are different recordings
    assert file_sha256_pcm16(root / files[3].path) != file_sha256_pcm16(root / mic2[0].path)


def test_scan_vctk_080(make_vctk):
    root = make_vctk("0.80", ["p225", "p226"], n_utts=2)
    assert detect_layout(root) == "0.80"
    files = scan(root, ["p226", "p225"], layout="0.80")
    assert [f.path for f in files] == ["wav48/p226/p226_001.wav", "wav48/p226/p226_002.wav",
                                       "wav48/p225/p225_001.wav", "wav48/p225/p225_002.wav"]
    x, sr = read_audio(root / files[0].path)
    assert sr == 48000 and x.shape == (19200,)
    # FLAC is accepted in the 0.80 layout (as in vctk-mini), but not the same utterance twice
    make_vctk_corpus(root, "0.80", ["p227"], 1, ext="flac")
    assert scan(root, ["p227"])[0].path == "wav48/p227/p227_001.flac"
    make_vctk_corpus(root, "0.80", ["p227"], 1, ext="wav")
    with pytest.raises(DataError, match="utterances present twice.*p227_001") as ei:
        scan(root, ["p227"])
    assert str(root / "wav48" / "p227") in str(ei.value)


def test_detect_layout_errors_name_the_folder(tmp_path):
    root = tmp_path / "VCTK-Corpus"
    (root / "wav16").mkdir(parents=True)
    (root / "txt").mkdir()
    with pytest.raises(DataError, match=r"not a VCTK corpus folder.*wav48_silence_trimmed/.*wav48/.*found: txt, wav16") as ei:
        detect_layout(root)
    assert str(root) in str(ei.value)
    with pytest.raises(DataError, match="corpus folder does not exist") as ei:
        scan(tmp_path / "nowhere", ["p225"])
    assert str(tmp_path / "nowhere") in str(ei.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"found: \(empty\)"):
        detect_layout(tmp_path / "empty")


def test_missing_and_empty_speaker(make_vctk):
    root = make_vctk("0.92", ["p225"], n_utts=1)
    with pytest.raises(DataError, match="missing speaker p226 \\(no such folder\\)") as ei:
        scan(root, ["p225", "p226"])
    assert str(root / "wav48_silence_trimmed" / "p226") in str(ei.value) and ei.value.hint
    (root / "wav48_silence_trimmed" / "p226").mkdir()
    with pytest.raises(DataError, match=r"speaker p226 has no audio files named <utt>_mic1.flac") as ei:
        scan(root, ["p225", "p226"])
    assert str(root / "wav48_silence_trimmed" / "p226") in str(ei.value)
    # a speaker with only mic2 files has no mic1 audio
    make_vctk_corpus(root, "0.92", ["p227"], 1)
    (root / "wav48_silence_trimmed" / "p227" / "p227_001_mic1.flac").unlink()
    with pytest.raises(DataError, match="speaker p227 has no audio files named <utt>_mic1.flac"):
        scan(root, ["p227"])


def test_file_of_another_speaker(make_vctk):
    root = make_vctk("0.80", ["p225", "p226"], n_utts=1)
    shutil.copy(root / "wav48/p226/p226_001.wav", root / "wav48/p225/p226_001.wav")
    with pytest.raises(DataError, match="file of another speaker in the folder of p225") as ei:
        scan(root, ["p225"])
    assert str(root / "wav48/p225/p226_001.wav") in str(ei.value)


def test_track_layout_mismatch(make_vctk, make_track):
    root = make_vctk("0.80", ["p225"], n_utts=1)
    with pytest.raises(DataError, match=r"has the VCTK 0.80 layout \(wav48/\), but this track is defined on VCTK "
                                        r"0.92 \(wav48_silence_trimmed/\)") as ei:
        scan(root, ["p225"], layout="0.92")
    assert str(root) in str(ei.value)
    with pytest.raises(DataError, match="has the VCTK 0.80 layout"):
        describe_sources(make_track(layout="0.92"), root, jobs=1)


# ---------------------------------------------------------------------------------------------
# tracks and manifests
def test_manifest_roundtrip_and_errors(tmp_path):
    rows = [Utterance("p232_001", "p232", "test", "wav48/p232/p232_001.wav", 48000, 100, "a" * 64),
            Utterance("p225_002", "p225", "train", "wav48/p225/p225_002.wav", 48000, 90, "b" * 64),
            Utterance("p225_001", "p225", "train", "wav48/p225/p225_001.wav", 48000, 80, "c" * 64),
            Utterance("p226_001", "p226", "valid", "wav48/p226/p226_001.wav", 16000, 70, "d" * 64)]
    path = tmp_path / "m.csv"
    digest = write_manifest(path, rows)
    back = read_manifest(path)
    assert [r.utt_id for r in back] == ["p225_001", "p225_002", "p226_001", "p232_001"]  # train, valid, test
    assert set(back) == set(rows) and path.read_bytes() == manifest_bytes(rows[::-1])
    assert len(digest) == 64 and not tmp_files(tmp_path)
    text = path.read_text()
    (tmp_path / "dup.csv").write_text(text + text.splitlines()[1] + "\n")
    with pytest.raises(DataError, match="duplicate utterance ids"):
        read_manifest(tmp_path / "dup.csv")
    (tmp_path / "cols.csv").write_text("utt_id,speaker\nx,y\n")
    with pytest.raises(DataError, match="manifest columns are"):
        read_manifest(tmp_path / "cols.csv")
    (tmp_path / "split.csv").write_text(text.replace(",valid,", ",dev,"))
    with pytest.raises(DataError, match=r"split.csv:\d+: unknown split 'dev'"):
        read_manifest(tmp_path / "split.csv")
    (tmp_path / "num.csv").write_text(text.replace(",16000,", ",16k,"))
    with pytest.raises(DataError, match="malformed manifest row"):
        read_manifest(tmp_path / "num.csv")
    with pytest.raises(DataError, match="manifest does not exist"):
        read_manifest(tmp_path / "none.csv")


def test_track_spec_validation():
    spec = track_spec()
    validate_track_spec(spec)
    bad = copy.deepcopy(spec)
    bad["splits"]["test"].append("p225")
    with pytest.raises(DataError, match="speaker p225 is in both train and test; splits must be disjoint"):
        validate_track_spec(bad)
    bad = copy.deepcopy(spec)
    bad["splits"]["valid"] = []
    with pytest.raises(DataError, match="split 'valid' has no speakers"):
        validate_track_spec(bad)
    del bad["corpus"]
    with pytest.raises(DataError, match="missing field 'corpus'"):
        validate_track_spec(bad)
    with pytest.raises(DataError, match="unknown track 'nope'") as ei:
        load_track("nope")
    assert "vctk-mini" in ei.value.hint
    with pytest.raises(DataError, match="speaker p999 is in no split of track tiny"):
        Track(spec).split_of("p999")


def test_unfrozen_track_needs_a_prepare(make_track, tmp_path):
    t = make_track()
    assert not t.frozen and t.manifest_path is None and t.mic == "mic1" and t.corpus_dir == "tiny"
    with pytest.raises(DataError, match="has no frozen manifest yet and has not been prepared") as ei:
        t.utterances(tmp_path)
    assert "bench data prepare --track tiny" in ei.value.hint


def test_committed_tracks():
    v1, full = load_archived("vctk-mini-v1"), load_track("vctk")
    assert v1.frozen and v1.archived and v1.layout == "0.80" and v1.corpus_dir == "vctk-mini" and v1.name == "vctk-mini"
    assert not full.frozen and full.layout == "0.92" and full.corpus_dir == "VCTK-Corpus-0.92"
    assert v1.splits["test"] == full.splits["test"] == ["p232", "p257"]  # the VoiceBank-DEMAND test speakers
    rows = v1.utterances()
    assert len(rows) == 579 and tuple(f.name for f in fields(rows[0]))[:len(COLUMNS)] == COLUMNS
    assert v1.manifest_path.name == "vctk-mini.csv" and v1.manifest_path.read_text().startswith(",".join(COLUMNS) + "\n")
    by_split = {s: {r.speaker for r in rows if r.split == s} for s in ("train", "valid", "test")}
    assert by_split == {s: set(v) for s, v in v1.splits.items()}
    assert sum(r.split == "test" for r in rows) == 30
    assert all(r.path == f"wav48/{r.speaker}/{r.utt_id}.flac" and r.corpus == "" for r in rows)
    rec = v1.record()
    # the committed vctk-mini-v1 results recorded exactly this
    assert rec == {"name": "vctk-mini", "version": 1, "split_id": "vctk-mini-v1", "frozen": True,
                   "manifest_sha256": "16e009b5d9fe7dcc" + rec["manifest_sha256"][16:]}
    assert track_version("vctk-mini", "vctk-mini-v1") == v1 and track_version("vctk-mini").split_id == "vctk-mini-v2"
    assert track_version("vctk-mini", "vctk-mini-v0").split_id == "vctk-mini-v2"  # unknown: checked against the current


# ---------------------------------------------------------------------------------------------
# prepare, end to end on a tiny corpus
SPEAKERS = {"train": ["p225"], "valid": ["p226"], "test": ["p227"]}
N_UTTS = 2
SRC_SAMPLES = 19200  # 0.4 s at 48 kHz


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A tiny 0.92 corpus (mic1 + mic2, 48 kHz FLAC) prepared once; tests copy it before changing it."""
    base = tmp_path_factory.mktemp("pristine")
    corpus = make_vctk_corpus(base / "corpus", "0.92", sum(SPEAKERS.values(), []), N_UTTS)
    track = Track(track_spec("tiny", "0.92", SPEAKERS))
    t0 = time.perf_counter()
    pt = prepare(track, PROTO, corpus, base / "prepared", jobs=2)
    return {"base": base, "corpus": corpus, "prepared": base / "prepared", "track": track, "pt": pt,
            "seconds": time.perf_counter() - t0}


@pytest.fixture
def work(pristine, tmp_path):
    """A private copy (mtimes kept) of the pristine corpus and prepared dir."""
    shutil.copytree(pristine["base"], tmp_path / "w", copy_function=shutil.copy2)
    corpus, prepared = tmp_path / "w" / "corpus", tmp_path / "w" / "prepared"
    track = pristine["track"]
    return {"corpus": corpus, "prepared": prepared, "track": track, "pt": PreparedTrack(track, PROTO, prepared)}


def test_prepare_writes_clean_noisy_and_manifests(pristine):
    pt, corpus, prepared = pristine["pt"], pristine["corpus"], pristine["prepared"]
    files = set(tree(prepared))
    clean = {f"tiny/clean/{s}/{spk}_{i:03d}.wav" for s, spks in SPEAKERS.items() for spk in spks
             for i in range(1, N_UTTS + 1)}
    noisy = {f"tiny/{NOISY}/{s}/{spk}_{i:03d}.wav" for s in ("valid", "test") for spk in SPEAKERS[s]
             for i in range(1, N_UTTS + 1)}
    meta = {"tiny/source_manifest.csv", "tiny/track.json", "tiny/clean/manifest.csv", f"tiny/{NOISY}/manifest.csv",
            f"tiny/{NOISY}/prepared.json"}
    assert files == clean | noisy | meta  # no train noisy, no mic2, no temp files
    assert not (prepared / "tiny" / NOISY / "train").exists() and not tmp_files(prepared)
    assert pt.is_prepared and pt.utt_ids("test") == ["p227_001", "p227_002"]

    src = read_manifest(prepared / "tiny" / "source_manifest.csv")
    assert [(r.utt_id, r.split, r.sample_rate, r.num_samples) for r in src] == [
        (f"{spk}_{i:03d}", s, 48000, SRC_SAMPLES) for s, spks in SPEAKERS.items() for spk in spks
        for i in range(1, N_UTTS + 1)]
    assert all(r.path.endswith("_mic1.flac") and r.sha256_pcm16 == file_sha256_pcm16(corpus / r.path) for r in src)

    for which in ("clean", "noisy"):
        for r in pt.manifest(which):
            path = (pt.clean_path if which == "clean" else pt.noisy_path)(r["split"], r["utt_id"])
            q, sr = sf.read(str(path), dtype="int16")
            assert sr == 16000 and sf.info(str(path)).subtype == "PCM_16"
            assert int(r["num_samples"]) == len(q) == SRC_SAMPLES // 3  # 48 kHz -> 16 kHz, same length in time
            assert r["sha256_pcm16"] == sha256_pcm16(q)
    info = pt.info()
    assert info["protocol"] == PROTO.record() and info["counts"] == {"train": 2, "valid": 2, "test": 2}
    assert info["track"]["name"] == "tiny" and info["track"]["frozen"] is False


def test_prepared_clean_is_the_pinned_resampling_of_the_source(pristine):
    pt, corpus = pristine["pt"], pristine["corpus"]
    for r in read_manifest(pristine["prepared"] / "tiny" / "source_manifest.csv"):
        x, sr = read_audio(corpus / r.path)
        expected = to_pcm16(resample(x, sr, 16000))
        got = to_pcm16(pt.load_clean(r.split, r.utt_id))
        assert np.array_equal(got, expected), r.utt_id


def test_prepared_noisy_is_the_protocol_output(pristine):
    pt = pristine["pt"]
    for split in ("valid", "test"):
        for utt in pt.utt_ids(split):
            clean = pt.load_clean(split, utt)
            expected = to_pcm16(PROTO.apply(clean, utt))
            assert np.array_equal(to_pcm16(pt.load_noisy(split, utt)), expected), utt
            assert not np.array_equal(to_pcm16(clean), expected)
    assert set(pt.load_split("valid", noisy=True)) == {"p226_001", "p226_002"}


def test_prepare_rerun_is_idempotent_and_fast(work, monkeypatch):
    before = tree(work["prepared"])
    if FORK:  # workers are forked: prove that nothing is recomputed, only hashed
        import bench.data.prepare as prep_mod

        def boom(*a, **k):
            raise AssertionError("re-run recomputed audio")

        monkeypatch.setattr(prep_mod, "resample", boom)
        monkeypatch.setattr(prep_mod, "write_wav_pcm16", boom)
        monkeypatch.setattr(Protocol, "apply", boom)
    t0 = time.perf_counter()
    prepare(work["track"], PROTO, work["corpus"], work["prepared"], jobs=2)
    assert time.perf_counter() - t0 < 20
    assert tree(work["prepared"]) == before, "a re-run rewrote files"


def test_prepare_resumes_after_an_interruption(work):
    prepared = work["prepared"]
    before = tree(prepared)
    golden = {p: (prepared / p).read_bytes() for p in before}
    # an interrupted run: one noisy file never written, one clean+noisy pair lost mid-write (temp file left)
    (prepared / f"tiny/{NOISY}/test/p227_002.wav").unlink()
    (prepared / "tiny/clean/valid/p226_001.wav").unlink()
    (prepared / f"tiny/{NOISY}/valid/p226_001.wav").unlink()
    stray = prepared / "tiny/clean/valid/.p226_001.wav.999999999.tmp"
    stray.write_bytes(b"RIFF" + b"\0" * 100)
    (prepared / f"tiny/{NOISY}/manifest.csv").unlink()  # interrupted before the manifests
    prepare(work["track"], PROTO, work["corpus"], prepared, jobs=2)
    after = tree(prepared)
    assert set(after) == set(before) and not tmp_files(prepared)
    assert all((prepared / p).read_bytes() == golden[p] for p in before), "resumed output differs"
    rewritten = {p for p in before if after[p] != before[p]}
    assert rewritten == {f"tiny/{NOISY}/test/p227_002.wav", "tiny/clean/valid/p226_001.wav",
                         f"tiny/{NOISY}/valid/p226_001.wav", f"tiny/{NOISY}/manifest.csv"}


def test_prepare_keeps_the_temp_files_of_a_live_process(work):
    """A concurrent prepare's temp file (its pid is alive) is not pulled from under it."""
    live = work["prepared"] / "tiny/clean/test" / f".p227_001.wav.{os.getpid()}.tmp"
    live.write_bytes(b"in progress")
    prepare(work["track"], PROTO, work["corpus"], work["prepared"], jobs=1)
    assert live.exists()


def test_prepare_does_not_depend_on_worker_count(work, tmp_path):
    again = prepare(work["track"], PROTO, work["corpus"], tmp_path / "one_worker", jobs=1)
    for name in ("source_manifest.csv", "clean/manifest.csv", f"{NOISY}/manifest.csv", f"{NOISY}/prepared.json"):
        assert (tmp_path / "one_worker/tiny" / name).read_bytes() == (work["prepared"] / "tiny" / name).read_bytes()
    assert again.is_prepared


def test_prepare_080_layout_wav(tmp_path, make_vctk):
    corpus = make_vctk("0.80", ["p225", "p226", "p227"], n_utts=1, duration=0.3)
    track = Track(track_spec("tiny80", "0.80", SPEAKERS))
    pt = prepare(track, PROTO, corpus, tmp_path / "prep", jobs=1)
    assert pt.info()["counts"] == {"train": 1, "valid": 1, "test": 1}
    assert [r.path for r in track.utterances(tmp_path / "prep")] == [
        "wav48/p225/p225_001.wav", "wav48/p226/p226_001.wav", "wav48/p227/p227_001.wav"]
    assert len(pt.load_clean("train", "p225_001")) == 4800


def test_prepare_reports_every_bad_file_and_keeps_finished_work(tmp_path, make_vctk, caplog):
    corpus = make_vctk("0.92", ["p225", "p226", "p227"], n_utts=2)
    d = corpus / "wav48_silence_trimmed"
    write_audio(d / "p227/p227_001_mic1.flac", np.zeros(19200), 48000)  # silent test file
    loud = np.clip(speech_like(19200, 48000, 1, peak=1.6), -1, 1)
    write_audio(d / "p226/p226_002_mic1.flac", loud, 48000)  # clipped valid file
    write_audio(d / "p225/p225_002_mic1.flac", loud, 48000)  # clipped train file: allowed
    track = Track(track_spec("tiny", "0.92", SPEAKERS))
    with caplog.at_level(logging.WARNING, logger="bench.core.audio"):
        with pytest.raises(DataError, match=r"2 of 6 utterances failed") as ei:
            prepare(track, PROTO, corpus, tmp_path / "prep", jobs=2)
    msg = str(ei.value)
    assert f"{d / 'p227/p227_001_mic1.flac'}: audio is silent" in msg
    assert f"{d / 'p226/p226_002_mic1.flac'}: audio is clipped" in msg
    assert "p225_002" not in msg and not isinstance(ei.value, ManifestMismatch)
    done = tmp_path / "prep/tiny/clean"
    assert (done / "train/p225_002.wav").exists() and (done / "test/p227_002.wav").exists()
    assert not (done / "test/p227_001.wav").exists() and not tmp_files(tmp_path / "prep")


def test_prepare_unreadable_source_names_the_file(tmp_path, make_vctk):
    corpus = make_vctk("0.92", ["p225", "p226", "p227"], n_utts=1)
    bad = corpus / "wav48_silence_trimmed/p226/p226_001_mic1.flac"
    bad.write_bytes(b"\x00" * 10 + os.urandom(500))
    with pytest.raises(DataError, match="1 source file.* could not be read") as ei:
        prepare(Track(track_spec("tiny", "0.92", SPEAKERS)), PROTO, corpus, tmp_path / "prep", jobs=1)
    assert f"{bad}: cannot decode audio" in str(ei.value)
    assert not (tmp_path / "prep/tiny/source_manifest.csv").exists()


@pytest.fixture
def frozen_tiny(work, tmp_path, monkeypatch):
    """The tiny track frozen by a committed-style manifest (MANIFEST_DIR redirected to a tmp dir)."""
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    shutil.copy(work["prepared"] / "tiny" / "source_manifest.csv", mdir / "tiny.csv")
    monkeypatch.setattr(tracks_mod, "MANIFEST_DIR", mdir)
    track = Track(track_spec("tiny", "0.92", SPEAKERS, manifest="tiny.csv"))
    assert track.frozen and track.manifest_path == mdir / "tiny.csv"
    return track


def test_prepare_frozen_track_matches_the_unfrozen_one(work, frozen_tiny, tmp_path):
    pt = prepare(frozen_tiny, PROTO, work["corpus"], tmp_path / "fresh", jobs=2)
    assert not (tmp_path / "fresh/tiny/source_manifest.csv").exists()
    for name in ("clean/manifest.csv", f"{NOISY}/manifest.csv"):
        assert (tmp_path / "fresh/tiny" / name).read_bytes() == (work["prepared"] / "tiny" / name).read_bytes()
    assert pt.info()["track"]["frozen"] is True


def test_prepare_changed_source_under_frozen_manifest(work, frozen_tiny, tmp_path):
    src = work["corpus"] / "wav48_silence_trimmed/p226/p226_002_mic1.flac"
    q, sr = sf.read(str(src), dtype="int16")
    q[1000:1010] += 3  # a tiny change of the samples: same length, same rate
    sf.write(str(src), q, sr, subtype="PCM_16")
    gone = work["corpus"] / "wav48_silence_trimmed/p227/p227_001_mic1.flac"
    gone.unlink()
    with pytest.raises(ManifestMismatch) as ei:
        prepare(frozen_tiny, PROTO, work["corpus"], tmp_path / "fresh", jobs=2)
    err = ei.value
    assert err.changed == ["wav48_silence_trimmed/p226/p226_002_mic1.flac"]
    assert err.missing == ["wav48_silence_trimmed/p227/p227_001_mic1.flac"]
    assert f"{src}: changed file under the frozen manifest: sha256_pcm16" in str(err)
    assert f"{gone}: file listed in the manifest is missing" in str(err)
    assert "bench data verify --track tiny" in err.hint
    # unchanged files were prepared and are kept
    assert (tmp_path / "fresh/tiny/clean/train/p225_001.wav").exists()


def test_prepare_changed_length_under_manifest(work):
    """After the first prepare an unfrozen track's sources are pinned by its source_manifest.csv."""
    src = work["corpus"] / "wav48_silence_trimmed/p225/p225_001_mic1.flac"
    q, sr = sf.read(str(src), dtype="int16")
    sf.write(str(src), q[:-48], sr, subtype="PCM_16")
    (work["prepared"] / "tiny/clean/train/p225_001.wav").unlink()  # so the source is read again
    with pytest.raises(ManifestMismatch, match=f"{src}: changed file.*{len(q) - 48} samples, manifest says {len(q)}"):
        prepare(work["track"], PROTO, work["corpus"], work["prepared"], jobs=1)


# ---------------------------------------------------------------------------------------------
# verify
def test_verify_sources_names_changed_missing_unreadable_and_extra(work):
    corpus, track = work["corpus"], work["track"]
    rows = track.utterances(work["prepared"])
    rep = verify_sources(track, corpus, rows, jobs=2)
    assert rep.ok and rep.checked == 6 and not rep.extra  # mic2 files are not "extra"

    d = corpus / "wav48_silence_trimmed"
    q, sr = sf.read(str(d / "p225/p225_002_mic1.flac"), dtype="int16")
    sf.write(str(d / "p225/p225_002_mic1.flac"), q.astype(np.int32) << 16, sr, subtype="PCM_24")  # re-encoded only
    q, sr = sf.read(str(d / "p226/p226_001_mic1.flac"), dtype="int16")
    q[5000] ^= 1  # one changed sample
    sf.write(str(d / "p226/p226_001_mic1.flac"), q, sr, subtype="PCM_16")
    (d / "p227/p227_002_mic1.flac").unlink()
    (d / "p226/p226_002_mic1.flac").write_bytes(b"garbage")
    make_vctk_corpus(corpus, "0.92", ["p225"], 1, start=9)

    rep = verify_sources(track, corpus, rows, jobs=2)
    assert not rep.ok and rep.checked == 6
    assert rep.changed == [str(d / "p226/p226_001_mic1.flac")]
    assert rep.missing == [str(d / "p227/p227_002_mic1.flac")]
    assert len(rep.unreadable) == 1 and str(d / "p226/p226_002_mic1.flac") in rep.unreadable[0]
    assert rep.extra == ["wav48_silence_trimmed/p225/p225_009_mic1.flac"]


def test_verify_prepared(work):
    pt = work["pt"]
    rep = verify_prepared(pt, jobs=1)
    assert rep.ok and rep.checked == 6 + 4
    noisy = pt.noisy_path("test", "p227_001")
    q, _ = sf.read(str(noisy), dtype="int16")
    q[0] ^= 1
    sf.write(str(noisy), q, 16000, subtype="PCM_16")
    pt.clean_path("train", "p225_001").unlink()
    rep = verify_prepared(pt, jobs=1)
    assert rep.changed == [str(noisy)] and rep.missing == [str(pt.clean_path("train", "p225_001"))]


def test_real_vctk_mini_verifies_against_the_committed_manifest(vctk_mini):
    track = load_archived("vctk-mini-v1")
    rep = verify_sources(track, vctk_mini, track.utterances(), jobs=2)
    assert rep.ok, f"missing {rep.missing[:5]}, changed {rep.changed[:5]}, unreadable {rep.unreadable[:5]}"
    assert rep.checked == 579 and rep.extra == []


# ---------------------------------------------------------------------------------------------
# data root resolution
def _corpus_at(root: Path, name: str = "vctk-mini") -> Path:
    (root / name / "wav48").mkdir(parents=True)
    return root / name


@pytest.fixture
def no_shared(tmp_path, monkeypatch):
    """Isolate resolution from the machine: no env var, a repo without ../shared, an empty user cache."""
    monkeypatch.delenv(root_mod.ENV_DATA_ROOT, raising=False)
    monkeypatch.setattr(root_mod, "REPO_ROOT", tmp_path / "fake" / "repo")
    monkeypatch.setattr(root_mod, "user_cache_data", lambda: tmp_path / "cache" / "data")
    return tmp_path


def test_data_root_precedence(no_shared, monkeypatch):
    tmp = no_shared
    track = load_archived("vctk-mini-v1")  # one corpus: the corpus folder itself may be given
    cli, env, shared = _corpus_at(tmp / "cli"), _corpus_at(tmp / "env"), _corpus_at(tmp / "fake" / "shared" / "data")
    cache = _corpus_at(tmp / "cache" / "data")
    monkeypatch.setenv("BENCH_DATA_ROOT", str(tmp / "env"))
    assert resolve_data_root(tmp / "cli", track) == cli  # --data-root wins
    assert resolve_data_root(None, track) == env  # then BENCH_DATA_ROOT
    monkeypatch.delenv("BENCH_DATA_ROOT")
    assert resolve_data_root(None, track) == shared  # then ../shared/data beside the repo
    shutil.rmtree(shared)
    assert resolve_data_root(None, track) == cache  # then the user cache
    # a path that is itself the corpus folder works too
    assert resolve_data_root(cli, track) == cli
    assert resolve_data_root(str(tmp / "cli"), track) == cli


def test_explicit_root_without_the_corpus_is_an_error(no_shared, monkeypatch):
    tmp = no_shared
    _corpus_at(tmp / "fake" / "shared" / "data")  # would be found, but an explicit choice never falls through
    (tmp / "empty").mkdir()
    mini, full = load_archived("vctk-mini-v1"), load_track("vctk")
    with pytest.raises(DataError, match=r"no vctk-mini corpus under .*empty \(from --data-root\)") as ei:
        resolve_data_root(tmp / "empty", mini)
    assert "--data-root" in ei.value.hint and "BENCH_DATA_ROOT" in ei.value.hint
    with pytest.raises(DataError, match=r"no vctk corpus under .*empty \(from --data-root\): expected VCTK-Corpus-0.92/") as ei:
        resolve_data_root(tmp / "empty", full)
    assert "run `bench data download vctk`" in ei.value.hint
    assert "bench data download vctk" in str(ei.value)
    monkeypatch.setenv("BENCH_DATA_ROOT", str(tmp / "empty"))
    with pytest.raises(DataError, match=r"\(from BENCH_DATA_ROOT\)"):
        resolve_data_root(None, full)


def test_no_data_anywhere_lists_where_it_looked(no_shared):
    with pytest.raises(DataError, match="no data found for track 'vctk'") as ei:
        resolve_data_root(None, load_track("vctk"))
    msg = str(ei.value)
    assert "../shared/data" in msg and "user cache" in msg and "bench data download vctk" in msg


def test_default_data_root_is_the_shared_data(shared_data, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    expected = Path(root_mod.REPO_ROOT).parent / "shared" / "data"
    if not (expected / "vctk-mini" / "wav48").is_dir():
        missing_shared(f"no vctk-mini at {expected}")
    assert resolve_data_root(None, load_archived("vctk-mini-v1")) == expected / "vctk-mini"
    assert resolve_data_root(None, load_track("vctk-mini")) == {
        "vctk": expected / "vctk-mini", "librispeech": expected / "librispeech-mini",
        "speechocean762": expected / "speechocean762-mini"}
