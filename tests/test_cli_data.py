"""Tests of `bench data prepare|verify|freeze` (and `bench noise show`) through the real command line:
`bench.cli.main.main([...])` in-process, and the installed entry point in a subprocess."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch  # noqa: F401  (imported once here, so forked prepare workers do not each import it)

import bench
import bench.data.tracks as tracks_mod
from bench.cli.main import main
from bench.protocol import Protocol

from conftest import make_vctk_corpus, track_spec

SPEAKERS = {"train": ["p225"], "valid": ["p226"], "test": ["p227"]}
NOISY = f"stft-v1-{Protocol.load().sha256[:8]}"  # the noisy folder is keyed by the protocol's hash


def flat(text: str) -> str:
    """Output without whitespace: rich wraps long lines (paths) at the console width."""
    return "".join(text.split())


@pytest.fixture
def cli(capsys):
    """Run `bench ...` in-process: returns (exit status, stdout, stderr). Restores the root logger after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def run(*argv) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    root.handlers[:] = handlers
    root.setLevel(level)


def run_bench(*argv, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "bench.cli.main", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, cwd=bench.REPO_ROOT, env=env)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A registered track `tiny` (its JSON in a redirected TRACK_DIR, manifests in a redirected MANIFEST_DIR)
    over a tiny synthetic 0.92 corpus at <data>/tiny."""
    tdir, mdir = tmp_path / "tracks", tmp_path / "manifests"
    tdir.mkdir()
    mdir.mkdir()
    (tdir / "tiny.json").write_text(json.dumps(track_spec("tiny", "0.92", SPEAKERS)))
    monkeypatch.setattr(tracks_mod, "TRACK_DIR", tdir)
    monkeypatch.setattr(tracks_mod, "MANIFEST_DIR", mdir)
    tracks_mod.load_track.cache_clear()
    data = tmp_path / "data"
    corpus = make_vctk_corpus(data / "tiny", "0.92", sum(SPEAKERS.values(), []), 2, duration=0.3)
    yield {"data": data, "corpus": corpus, "prepared": tmp_path / "prepared", "manifests": mdir}
    tracks_mod.load_track.cache_clear()


# ---------------------------------------------------------------------------------------------
# tiny registered track
def test_prepare_then_verify(cli, tiny):
    args = ["--track", "tiny", "--data-root", tiny["data"], "--prepared-dir", tiny["prepared"], "--jobs", 2]
    code, out, err = cli("data", "prepare", *args)
    assert code == 0, err
    assert flat("prepared tiny: train 2, valid 2, test 2") in flat(out)
    assert (tiny["prepared"] / f"tiny/{NOISY}/test/p227_002.wav").exists()
    code, out, err = cli("data", "verify", *args)
    assert code == 0, err
    assert flat("ok 6 source files of tiny match the manifest written at first prepare") in flat(out)
    assert flat("ok 10 prepared files") in flat(out)

    # one changed sample in a source file: verify names it and fails
    src = tiny["corpus"] / "wav48_silence_trimmed/p226/p226_001_mic1.flac"
    q, sr = sf.read(str(src), dtype="int16")
    q[100] ^= 4
    sf.write(str(src), q, sr, subtype="PCM_16")
    noisy = tiny["prepared"] / f"tiny/{NOISY}/valid/p226_002.wav"
    noisy.unlink()
    code, out, err = cli("data", "verify", *args)
    assert code == 1
    assert flat(f"changed {src}") in flat(err) and flat(f"prepared missing {noisy}") in flat(err)
    assert flat("tiny: 0 missing, 1 changed, 0 unreadable of 6 files") in flat(err)
    assert flat("Traceback") not in flat(out + err)


def test_prepare_broken_corpus_exits_2_with_a_clear_error(cli, tiny):
    bad = tiny["corpus"] / "wav48_silence_trimmed/p227/p227_002_mic1.flac"
    bad.write_bytes(os.urandom(2048))
    code, out, err = cli("data", "prepare", "--track", "tiny", "--data-root", tiny["data"],
                         "--prepared-dir", tiny["prepared"], "--jobs", 1)
    assert code == 2
    assert flat("error:") in flat(err) and flat(f"{bad}: cannot decode audio") in flat(err)
    assert flat("Traceback") not in flat(out + err)


def test_prepare_missing_speaker_exits_2(cli, tiny):
    import shutil

    shutil.rmtree(tiny["corpus"] / "wav48_silence_trimmed/p226")
    code, out, err = cli("data", "prepare", "--track", "tiny", "--data-root", tiny["data"],
                         "--prepared-dir", tiny["prepared"])
    assert code == 2 and flat("missing speaker p226") in flat(err) and flat("Traceback") not in flat(err)


def test_freeze_writes_the_manifest_once(cli, tiny):
    args = ["--track", "tiny", "--data-root", tiny["data"], "--jobs", 1]
    code, out, err = cli("data", "freeze", *args)
    assert code == 0, err
    target = tiny["manifests"] / "tiny.csv"
    assert flat(f"wrote {target} (6 utterances") in flat(out)
    lines = target.read_text().splitlines()
    assert lines[0] == "utt_id,speaker,split,path,sample_rate,num_samples,sha256_pcm16" and len(lines) == 7
    before = target.read_bytes()
    code, out, err = cli("data", "freeze", *args)
    assert code == 2 and flat("exists: the track is frozen") in flat(err)
    assert flat("bump the track version") in flat(err)
    assert target.read_bytes() == before
    # the frozen manifest equals the one an unfrozen prepare writes
    assert cli("data", "prepare", *args, "--prepared-dir", tiny["prepared"])[0] == 0
    assert (tiny["prepared"] / "tiny/source_manifest.csv").read_bytes() == before


def test_unknown_track_and_missing_data(cli, tmp_path):
    code, out, err = cli("data", "verify", "--track", "nope", "--prepared-dir", tmp_path)
    assert code == 2 and flat("unknown track 'nope'") in flat(err) and flat("vctk-mini") in flat(err)
    (tmp_path / "empty").mkdir()
    code, out, err = cli("data", "prepare", "--track", "vctk-mini", "--data-root", tmp_path / "empty",
                         "--prepared-dir", tmp_path / "prep")
    assert code == 2 and flat(f"no vctk-mini corpus under {tmp_path / 'empty'} (from --data-root)") in flat(err)
    assert flat("BENCH_DATA_ROOT") in flat(err) and not (tmp_path / "prep").exists()


def test_noise_show(cli):
    from bench.protocol import Protocol

    code, out, err = cli("noise", "show")
    assert code == 0 and Protocol.load().sha256 in out and '"zero_strongest"' in out


# ---------------------------------------------------------------------------------------------
# the real vctk-mini corpus
def test_verify_real_vctk_mini(cli, shared_data, vctk_mini, tmp_path):
    """vctk-mini v2: 1270 files of three corpora (VCTK, LibriSpeech, speechocean762)."""
    code, out, err = cli("data", "verify", "--track", "vctk-mini", "--data-root", shared_data,
                         "--prepared-dir", tmp_path, "--jobs", 2)
    assert code == 0, err
    assert flat("ok 1270 source files of vctk-mini match the frozen manifest") in flat(out)
    assert flat("not in manifest") not in flat(out)
    assert flat("not prepared yet") in flat(out) and not any(tmp_path.iterdir())


@pytest.mark.parametrize("track, n", [("so762-test", 125), ("librispeech-test-other", 80), ("vbdemand-sample", 35 * 2)])
def test_verify_real_test_only_tracks(cli, shared_data, tmp_path, track, n):
    """Test-only tracks verify against their frozen manifests; files their pick rule leaves out are not 'extra'."""
    code, out, err = cli("data", "verify", "--track", track, "--data-root", shared_data, "--prepared-dir", tmp_path,
                         "--jobs", 2)
    assert code == 0, err
    assert flat(f"ok {n} source files of {track} match the frozen manifest") in flat(out)
    assert flat("not in manifest") not in flat(out)


def test_verify_real_vctk_mini_subprocess(shared_data, vctk_mini, tmp_path):
    res = run_bench("data", "verify", "--track", "vctk-mini", "--data-root", shared_data,
                    "--prepared-dir", tmp_path, "--jobs", 2)
    assert res.returncode == 0, res.stderr
    assert flat("ok 1270 source files of vctk-mini match the frozen manifest") in flat(res.stdout)


def test_prepare_broken_corpus_subprocess(tmp_path):
    """A corpus in the wrong layout for the track: exit 2, one clear message, no traceback."""
    make_vctk_corpus(tmp_path / "data" / "VCTK-Corpus-0.92", "0.80", ["p232"], 1, duration=0.1)
    res = run_bench("data", "prepare", "--track", "vctk", "--data-root", tmp_path / "data",
                    "--prepared-dir", tmp_path / "prep")
    assert res.returncode == 2, res.stdout + res.stderr
    assert flat("error:") in flat(res.stderr)
    assert flat("has the VCTK 0.80 layout (wav48/), but this track is defined on VCTK 0.92") in flat(res.stderr)
    assert flat(str(tmp_path / "data" / "VCTK-Corpus-0.92")) in flat(res.stderr)
    assert flat("Traceback") not in flat(res.stderr + res.stdout)


def test_prepare_vctk_mini_with_a_changed_file_is_a_manifest_mismatch(cli, vctk_mini, tmp_path):
    """A local copy of vctk-mini whose files differ from the frozen manifest is refused, naming the files."""
    corpus = tmp_path / "data" / "vctk-mini"
    (corpus / "wav48").mkdir(parents=True)
    for spk in ("p225", "p226", "p227", "p228", "p232", "p239", "p257", "p287"):
        (corpus / "wav48" / spk).mkdir()
    (tmp_path / "data/librispeech-mini/train-clean-100").mkdir(parents=True)  # v2's other corpora, empty
    (tmp_path / "data/speechocean762-mini/train").mkdir(parents=True)
    src = vctk_mini / "wav48/p232/p232_043.flac"
    q, sr = sf.read(str(src), dtype="int16")
    q[2000] = np.int16(q[2000] ^ 1)
    changed = corpus / "wav48/p232/p232_043.flac"
    sf.write(str(changed), q, sr, subtype="PCM_16")
    code, out, err = cli("data", "prepare", "--track", "vctk-mini", "--data-root", tmp_path / "data",
                         "--prepared-dir", tmp_path / "prep", "--jobs", 2)
    assert code == 2
    assert flat("1269 missing, 1 changed and 0 unreadable or invalid source file(s) under the manifest of vctk-mini") \
        in flat(err)
    assert flat("file listed in the manifest is missing") in flat(err)
    assert flat("bench data verify --track vctk-mini") in flat(err)
    code, out, err = cli("data", "verify", "--track", "vctk-mini", "--data-root", tmp_path / "data",
                         "--prepared-dir", tmp_path / "prep", "--jobs", 2)
    assert code == 1 and flat(f"changed {changed}") in flat(err)
    assert flat("vctk-mini: 1269 missing, 1 changed, 0 unreadable of 1270 files") in flat(err)


@pytest.mark.slow
def test_prepare_real_vctk_mini(cli, shared_data, vctk_mini, tmp_path):
    args = ["--track", "vctk-mini", "--data-root", shared_data, "--prepared-dir", tmp_path]
    code, out, err = cli("data", "prepare", *args)
    assert code == 0, err
    assert flat("prepared vctk-mini: train 1202, valid 38, test 30") in flat(out)
    code, out, err = cli("data", "verify", *args)
    assert code == 0, err
    assert flat("ok 1270 source files") in flat(out) and flat("ok 1338 prepared files") in flat(out)
    assert flat("matches the committed reference hashes (68 files, vctk-mini-v2.stft-v1.csv)") in flat(out)
    t = tmp_path / "vctk-mini"
    assert len(list((t / NOISY / "test").glob("*.wav"))) == 30 and not (t / NOISY / "train").exists()
    assert not list(t.rglob("*.tmp"))
    code, out, err = cli("data", "prepare", *args)  # re-run: only hashing
    assert code == 0, err
