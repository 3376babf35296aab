"""Tests of `bench enhance` (bench/run/enhance.py): offline and streaming enhancement of real noisy files,
any sample rate / channel count in and out, run folders / MODEL@RUN_ID / checkpoints / adapter names,
and clear per-file errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from bench import REPO_ROOT
from bench.core.audio import resample, to_pcm16
from bench.cli.main import main

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from baselines.demucs.adapter import Demucs as DemucsAdapter  # noqa: E402
from baselines.demucs.streamer import running_norm_reference  # noqa: E402

from conftest import missing_shared

FILES = ("p232_010.flac", "p232_014.flac")     # 2.8 s and 4.6 s of real noisy speech at 16 kHz
TINY = {"hidden": 4, "depth": 4, "resample": 2}


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def noisy(shared_data):
    folder = shared_data / "vbdemand-sample" / "noisy"
    paths = [folder / f for f in FILES]
    if not all(p.exists() for p in paths):
        missing_shared(f"real noisy sample files not found in {folder}")
    return paths


def cli(capsys, *args) -> tuple[int, str, str]:
    rc = main(["enhance", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def pcm(path) -> tuple[np.ndarray, int, str]:
    info = sf.info(str(path))
    data, sr = sf.read(str(path), dtype="int16", always_2d=True)
    return data, sr, info.subtype


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A randomly initialized tiny causal Demucs, saved like bench/train/trainer.py's checkpoints."""
    a = DemucsAdapter()
    config = a.resolved_config(overrides=TINY)
    torch.manual_seed(0)
    model = a.build(**config)
    budget = {"trained": True, "preset": None, "steps": 0, "epochs": 0.0, "wall_minutes": 0.0, "max_steps": 0,
              "max_minutes": None, "device": "cpu", "hardware": "test", "checkpoint": None, "checkpoint_sha256": None}
    state = {"adapter": "demucs", "model_config": config, "train_config": {"lr": 1e-3}, "preset": None, "step": 0,
             "elapsed": 0.0, "best_valid": float("inf"), "model": model.state_dict(), "optimizer": {},
             "torch_rng": torch.get_rng_state(), "cuda_rng": None, "budget": budget}
    path = tmp_path_factory.mktemp("runs") / "best.pt"
    torch.save(state, path)
    return path, model.eval()


# ------------------------------------------------------------------ offline, training-free adapter

def test_offline_training_free_adapter(tmp_path, capsys, noisy):
    out = tmp_path / "out"
    rc, stdout, err = cli(capsys, "--run", "spectral-subtraction", *noisy, "-o", out)
    assert rc == 0, err
    from bench.adapters.base import get_adapter

    a = get_adapter("spectral-subtraction").adapter
    model = a.build()
    for src in noisy:
        q, sr, subtype = pcm(out / f"{src.stem}.wav")
        x, sr_in = sf.read(str(src), dtype="float32", always_2d=True)
        assert (sr, subtype, q.shape) == (sr_in, "PCM_16", x.shape)            # rate, 16 bits, length, channels
        with torch.inference_mode():
            ref = to_pcm16(a.enhance(model, torch.from_numpy(x.T.copy()))[0].numpy())
        assert np.abs(q[:, 0].astype(int) - ref.astype(int)).max() <= 1
        assert np.abs(q[:, 0].astype(int) - to_pcm16(x[:, 0]).astype(int)).mean() > 10  # it did something
    assert "2 file(s) written" in stdout


def test_stereo_44k1_in_stereo_44k1_out(tmp_path, capsys, noisy):
    """Channels are enhanced independently (no down-mix), at the file's own rate and length."""
    x0, _ = sf.read(str(noisy[0]), dtype="float32")
    x1, _ = sf.read(str(noisy[1]), dtype="float32")
    n = min(len(x0), len(x1))
    left, right = resample(x0[:n], 16000, 44100), 0.5 * resample(x1[:n], 16000, 44100)
    stereo = tmp_path / "in" / "stereo.wav"
    mono = tmp_path / "in" / "left.wav"
    stereo.parent.mkdir()
    sf.write(str(stereo), np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    sf.write(str(mono), left, 44100, subtype="PCM_16")
    rc, _, err = cli(capsys, "--run", "spectral-subtraction", stereo, mono, "-o", tmp_path / "out")
    assert rc == 0, err
    q, sr, subtype = pcm(tmp_path / "out" / "stereo.wav")
    frames = sf.info(str(stereo)).frames
    assert (sr, subtype, q.shape) == (44100, "PCM_16", (frames, 2))
    qm, srm, _ = pcm(tmp_path / "out" / "left.wav")
    assert srm == 44100 and qm.shape == (frames, 1)
    assert np.abs(q[:, 0].astype(int) - qm[:, 0].astype(int)).max() <= 1     # left alone == left of the pair
    assert np.abs(q[:, 0].astype(int) - q[:, 1].astype(int)).mean() > 10     # right is its own signal


# ------------------------------------------------------------------ streaming, Demucs checkpoint

def test_stream_demucs_checkpoint(tmp_path, capsys, noisy, tiny_checkpoint):
    ck, model = tiny_checkpoint
    out = tmp_path / "stream"
    rc, stdout, err = cli(capsys, "--run", ck, *noisy, "-o", out, "--stream", "--chunk", "97")
    assert rc == 0, err
    assert "streaming, chunks of 97 samples" in stdout.replace("\n", " ")
    for src in noisy:
        q, sr, subtype = pcm(out / f"{src.stem}.wav")
        x, sr_in = sf.read(str(src), dtype="float32")
        assert (sr, subtype, q.shape) == (sr_in, "PCM_16", (len(x), 1))
        with torch.inference_mode():     # what the streamer computes: the running-std normalization
            ref = to_pcm16(running_norm_reference(model, torch.from_numpy(x)[None])[0].numpy())
        assert np.abs(q[:, 0].astype(int) - ref.astype(int)).max() <= 1

    # offline with the same checkpoint: the utterance-std normalization of `model(x)`
    rc, _, err = cli(capsys, "--run", ck, noisy[0], "-o", tmp_path / "offline")
    assert rc == 0, err
    q, _, _ = pcm(tmp_path / "offline" / f"{noisy[0].stem}.wav")
    x, _ = sf.read(str(noisy[0]), dtype="float32")
    with torch.inference_mode():
        ref = to_pcm16(model(torch.from_numpy(x)[None])[0].numpy())
    assert np.abs(q[:, 0].astype(int) - ref.astype(int)).max() <= 1


def test_run_folder_and_model_at_run_id(tmp_path, capsys, noisy, tiny_checkpoint):
    """--run takes a results folder (a committed training-free run: its config.json's model config),
    MODEL@RUN_ID under --results-dir, or a checkpoint; a trained run folder with shipped weights is
    covered in test_evidence.py."""
    from conftest import committed, copy_run

    free = copy_run(committed("noisy"), tmp_path / "results")
    rc, _, err = cli(capsys, "--run", free, noisy[0], "-o", tmp_path / "c")
    assert rc == 0, err
    c, _, _ = pcm(tmp_path / "c" / f"{noisy[0].stem}.wav")
    x, _ = sf.read(str(noisy[0]), dtype="int16")
    assert np.array_equal(c[:, 0], x)                 # identity: the 16-bit input comes back unchanged
    rc, _, err = cli(capsys, "--run", f"noisy@{free.name}", "--results-dir", tmp_path / "results",
                     noisy[0], "-o", tmp_path / "d")
    assert rc == 0, err
    assert (tmp_path / "d" / f"{noisy[0].stem}.wav").read_bytes() == (tmp_path / "c" / f"{noisy[0].stem}.wav").read_bytes()

    ck, model = tiny_checkpoint
    rc, _, err = cli(capsys, "--run", ck, noisy[0], "-o", tmp_path / "a")
    assert rc == 0, err
    rc, _, err = cli(capsys, "--run", ck, noisy[0], "-o", tmp_path / "b", "--stream")
    assert rc == 0, err
    a, _, _ = pcm(tmp_path / "a" / f"{noisy[0].stem}.wav")
    b, _, _ = pcm(tmp_path / "b" / f"{noisy[0].stem}.wav")
    x = torch.from_numpy(sf.read(str(noisy[0]), dtype="float32")[0])[None]
    with torch.inference_mode():                      # the checkpoint's model, offline and streamed
        ref_a, ref_b = to_pcm16(model(x)[0].numpy()), to_pcm16(running_norm_reference(model, x)[0].numpy())
    assert np.abs(a[:, 0].astype(int) - ref_a.astype(int)).max() <= 1
    assert np.abs(b[:, 0].astype(int) - ref_b.astype(int)).max() <= 1


# ------------------------------------------------------------------ errors

def test_unreadable_file_is_reported_and_the_others_processed(tmp_path, capsys, noisy):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    rc, stdout, err = cli(capsys, "--run", "spectral-subtraction", noisy[0], bad, empty, tmp_path / "missing.wav",
                          noisy[1], "-o", out)
    assert rc == 1
    assert (out / f"{noisy[0].stem}.wav").exists() and (out / f"{noisy[1].stem}.wav").exists()
    assert not (out / "bad.wav").exists()
    text = " ".join((stdout + err).split())
    assert "bad.wav: cannot decode audio" in text
    assert "empty.wav: file is empty" in text
    assert "missing.wav: file does not exist" in text
    assert "3 of 5 file(s) failed" in text
    assert "Traceback" not in stdout + err


def test_an_output_folder_made_for_nothing_is_not_left_behind(tmp_path, capsys):
    """Every input fails: the -o folder this command made is removed (an existing one is kept)."""
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio")
    out = tmp_path / "out"
    rc, stdout, err = cli(capsys, "--run", "spectral-subtraction", bad, "-o", out)
    assert rc == 1 and not out.exists() and "removed" in stdout
    out.mkdir()
    rc, _, _ = cli(capsys, "--run", "spectral-subtraction", bad, "-o", out)
    assert rc == 1 and out.is_dir()


def test_model_at_run_id_is_the_runs_home_folder(capsys):
    """A run scored on several tracks: MODEL@RUN_ID resolves to the folder on its training track (its weights),
    not to the set scored last."""
    from bench.scoring.results import RESULTS_DIR, find_run, load_run

    home = next(d for d in sorted((RESULTS_DIR / "vctk-mini" / "stft-v1" / "demucs").iterdir())
                if (RESULTS_DIR / "librispeech-test-other" / "stft-v1" / "demucs" / d.name).is_dir())
    found = find_run(f"demucs@{home.name}")
    assert found == home and load_run(found).summary["training"]["track"] == "vctk-mini"


@pytest.mark.parametrize("args, message", [
    (["--run", "spectral-subtraction", "--stream"], "not causal"),
    (["--run", "noisy", "--stream"], "no streaming implementation"),
    (["--run", "demucs"], "must be trained first"),
    (["--run", "oracle-irm"], "oracle"),
    (["--run", "no-such-model"], "no such run folder"),
    (["--run", "noisy", "--chunk", "97"], "--chunk only applies with --stream"),
])
def test_clear_setup_errors(tmp_path, capsys, noisy, args, message):
    rc, stdout, err = cli(capsys, *args, noisy[0], "-o", tmp_path / "out")
    assert rc == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in stdout + err
