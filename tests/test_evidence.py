"""A trained run ships its evidence and a reader can check it: weights (safetensors) and every ranked output
in the run folder, `bench verify` (hashes, re-scored outputs, re-enhancement from the weights), `bench
reproduce` (same weights from the record), `bench enhance --run <results folder>`. On a tiny prepared track
with a real trainable adapter (stft-mask-gru, a few steps), through the real pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.adapters.base import discover
from bench.cli.main import main
from bench.verify.evidence import verify_run
from bench.run.pipeline import RunOptions, run
from bench.scoring.results import RESULTS_DIR, iter_run_dirs, load_run
from bench.scoring.weights import WEIGHTS_FILE, file_sha256, read_weights

from conftest import make_tiny_prepared

MODEL = "stft-mask-gru"
TRAIN = {"max_steps": 3, "batch_size": 2, "segment_seconds": 0.5, "valid_every": 3, "checkpoint_every": 3,
         "num_workers": 0}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("evidence")
    pt = make_tiny_prepared(base, "tiny-evidence", duration=1.0)
    opts = RunOptions(preset="quick", train_overrides=dict(TRAIN), run_id="ev1", results_dir=base / "results",
                      runs_dir=base / "runs", leaderboard=False, jobs=1,
                      metrics=("pesq_wb", "stoi", "si_sdr", "snr"))
    home = run(discover()[MODEL], pt, opts)
    return home, base / "results", pt


def test_a_trained_run_ships_weights_and_every_output(trained):
    home, results, pt = trained
    r = load_run(home)
    w = r.summary["weights"]
    assert w["shipped"] and (home / WEIGHTS_FILE).exists() and w["file"] == f"tiny-evidence/stft-v1/{MODEL}/ev1/{WEIGHTS_FILE}"
    assert file_sha256(home / WEIGHTS_FILE) == w["sha256"] and w["dtype"] in ("float16", "float32")
    tensors, meta = read_weights(home / WEIGHTS_FILE)
    assert meta["adapter"] == MODEL and str(next(iter(tensors.values())).dtype).endswith(w["dtype"])
    assert sorted(p.stem for p in (home / "enhanced").glob("*.flac")) == sorted(pt.utt_ids("test"))
    assert r.summary["training"]["track"] == "tiny-evidence" and r.summary["training"]["protocol"] == "stft-v1"
    assert r.summary["budget"]["steps"] == 3


@pytest.mark.parametrize("mode", ["fast", "rescore", "reenhance"])
def test_verify_accepts_the_untouched_run(trained, mode):
    home, results, pt = trained
    c = verify_run(home, results_root=results, mode=mode, prepared_root=pt.root, jobs=1, track=pt.track)
    assert c.ok, c.problems


def _copy(trained, tmp_path) -> tuple[Path, Path]:
    home, results, pt = trained
    root = tmp_path / "results"
    shutil.copytree(results, root)
    return root / home.relative_to(results), root


def test_verify_catches_an_edited_output(trained, tmp_path):
    home, root = _copy(trained, tmp_path)
    f = sorted((home / "enhanced").glob("*.flac"))[0]
    x, sr = sf.read(str(f), dtype="int16")
    x[100] = x[100] + 7
    sf.write(str(f), x, sr, subtype="PCM_16")
    c = verify_run(home, results_root=root, mode="fast")
    assert not c.ok and "samples differ from output_sha256" in c.problems[0]


def test_verify_catches_swapped_weights(trained, tmp_path):
    home, root = _copy(trained, tmp_path)
    (home / WEIGHTS_FILE).write_bytes((home / WEIGHTS_FILE).read_bytes()[:-4] + b"\0\0\0\0")
    c = verify_run(home, results_root=root, mode="fast")
    assert not c.ok and "weights.sha256" in " ".join(c.problems)


def test_reenhance_catches_scores_the_weights_do_not_give(trained, tmp_path):
    """Weights of another model (an untrained one) with the recorded hash forged: re-enhancement differs."""
    import torch

    from bench.scoring.weights import ship_weights

    home, root = _copy(trained, tmp_path)
    pt = trained[2]
    s = json.loads((home / "summary.json").read_text())
    torch.manual_seed(123)
    other = discover()[MODEL].adapter.build(**json.loads((home / "config.json").read_text())["model_config"])
    for p in other.parameters():
        p.data.mul_(3.0)
    rec = ship_weights(other, home, adapter=MODEL)
    s["weights"]["sha256"] = rec["sha256"]
    s["weights"]["dtype"] = rec["dtype"]
    s["weights"]["bytes"] = rec["bytes"]
    (home / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
    c = verify_run(home, results_root=root, mode="reenhance", prepared_root=pt.root, jobs=1, track=pt.track)
    assert not c.ok and any("re-enhanced" in p for p in c.problems), c.problems


def test_reenhance_compares_with_the_shipped_outputs(trained):
    """Where outputs are shipped, re-enhancement is held to them by waveform: the clean reference in place
    of an output (hash and scores made consistent) is tens of dB away; the same output is not."""
    from bench.verify.evidence import REENHANCE_WAVEFORM_DB, Check, compare_waveforms, waveform_db

    home, results, pt = trained
    utt = pt.utt_ids("test")[0]
    y, _ = sf.read(str(home / "enhanced" / f"{utt}.flac"), dtype="float32")
    clean = pt.load_clean("test", utt)
    assert waveform_db(y, y) == np.inf and waveform_db(y, y[:-1]) == -np.inf
    assert waveform_db(y, y + 1e-6 * np.std(y)) > REENHANCE_WAVEFORM_DB
    ok, forged = Check("x"), Check("x")
    compare_waveforms({utt: y}, {utt: y}, ok)
    compare_waveforms({utt: y}, {utt: clean}, forged)
    assert ok.ok and "within inf dB" in ok.notes[0]
    assert forged.problems == [f"re-enhanced: 1 of 1 outputs differ from the shipped ones (worst {utt}: "
                               f"{waveform_db(clean, y):.1f} dB below the output, tolerance 40 dB)"]


@pytest.mark.parametrize("unshipped", [False, True])
def test_verify_all_reenhances_only_folders_that_ship_outputs(trained, monkeypatch, unshipped):
    """A folder that ships no outputs (every set but the ranked one) is re-enhanced and re-scored when named,
    and skipped under `--all --reenhance`."""
    import bench.verify.files as files

    home, results, pt = trained
    monkeypatch.setattr(files, "outputs_of", lambda run: {})
    c = verify_run(home, results_root=results, mode="reenhance", prepared_root=pt.root, jobs=1, track=pt.track,
                   reenhance_unshipped=unshipped)
    assert c.ok and any(n.startswith("re-enhanced: pesq_wb max") for n in c.notes) == unshipped, c.notes


def test_reproduce_gives_the_same_weights(trained, tmp_path):
    from bench.verify.reproduce import reproduce

    home, results, pt = trained
    res = reproduce(home, runs_dir=tmp_path / "runs", prepared_root=pt.root, track=pt.track)
    assert res["steps"] == 3 and res["identical"], res


def test_enhance_with_the_run_folder(trained, tmp_path, monkeypatch):
    home, results, pt = trained
    utt = pt.utt_ids("test")[0]
    src = pt.noisy_path("test", utt)
    assert main(["enhance", "--run", str(home), str(src), "-o", str(tmp_path / "out")]) == 0
    y, sr = sf.read(str(tmp_path / "out" / f"{utt}.wav"))
    ref, _ = sf.read(str(home / "enhanced" / f"{utt}.flac"))
    assert sr == 16000 and y.shape == ref.shape
    # the shipped output was made by the full-precision model; the shipped weights reproduce it closely
    assert np.max(np.abs(y - ref)) < 0.02


@pytest.mark.slow   # `make test` runs `bench verify --all --reenhance` before the suite (CI), a superset
def test_committed_runs_pass_the_fast_verification():
    """What CI runs (`bench verify --all --fast`): every committed results folder against its files."""
    dirs = list(iter_run_dirs(RESULTS_DIR))
    assert dirs
    bad = [(c.path, c.problems) for c in (verify_run(d, mode="fast") for d in dirs) if not c.ok]
    assert bad == []


@pytest.mark.slow   # `make test` runs `bench verify --all --reenhance` before the suite (CI), a superset
def test_one_committed_ranked_run_is_re_scored():
    """CI re-scores the shipped outputs of one committed run of the ranked set (the cheapest training-free one)."""
    cands = [d for d in iter_run_dirs(RESULTS_DIR) if d.parent.parent.name == "stft-v1"
             and (d / "enhanced").is_dir() and d.parent.name == "spectral-subtraction"]
    if not cands:
        pytest.skip("no committed spectral-subtraction run with shipped outputs")
    c = verify_run(cands[-1], mode="rescore", jobs=2)
    assert c.ok, c.problems


def test_weights_files_of_the_same_tensors_are_byte_identical_across_processes(tmp_path):
    """safetensors orders the header's metadata differently in each process; the shipped file must not."""
    import subprocess
    import sys

    code = ("import sys, torch; from pathlib import Path; from bench.scoring.weights import write_weights; "
            "t = {'b.weight': torch.arange(6, dtype=torch.float16).reshape(2, 3), 'a.bias': torch.ones(3)}; "
            "print(write_weights(t, Path(sys.argv[1]), adapter='demucs'))")
    shas = []
    for i in range(4):   # each process draws its own hash-map seed
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / f"w{i}.safetensors")], check=True,
                             capture_output=True, text=True, cwd=Path(__file__).parent.parent).stdout.split()
        shas.append(out[-1])
    assert len(set(shas)) == 1
    data = [(tmp_path / f"w{i}.safetensors").read_bytes() for i in range(4)]
    assert all(d == data[0] for d in data)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "w0.safetensors"), "pt") as fh:   # still a valid file, tensors and metadata intact
        assert fh.metadata() == {"adapter": "demucs", "float_dtype": "float16,float32", "format": "pt"}
        assert fh.get_tensor("b.weight").tolist() == [[0, 1, 2], [3, 4, 5]]
