"""CI's few-step version of every trainable adapter: `bench run` (train -> score -> results) with
its `quick` preset for 2 optimizer steps on a tiny prepared track, through the real pipeline."""

from __future__ import annotations

import json

import pytest

from bench.adapters.base import discover
from bench.run.pipeline import RunOptions, run
from bench.scoring.results import load_run

from conftest import make_tiny_prepared

TRAINABLE = sorted(name for name, f in discover().items() if f.adapter.trainable)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_prepared(tmp_path_factory.mktemp("smoke"), "tiny-smoke", duration=1.0)


def test_there_are_trainable_adapters():
    assert {"demucs", "convtasnet", "sepformer"} <= set(TRAINABLE)


@pytest.mark.parametrize("name", TRAINABLE)
def test_few_step_run(name, tiny, tmp_path):
    found = discover()[name]
    opts = RunOptions(preset="quick", train_overrides={"max_steps": 2, "batch_size": 2, "segment_seconds": 0.5,
                                                      "valid_every": 2, "checkpoint_every": 2, "num_workers": 0},
                      run_id="smoke", results_dir=tmp_path / "results", runs_dir=tmp_path / "runs",
                      leaderboard=False, jobs=1,
                      metrics=("pesq_wb", "stoi", "si_sdr", "snr"))
    path = run(found, tiny, opts)
    r = load_run(path)                                 # validates schema, hashes, recomputation
    b = r.summary["budget"]
    assert b["trained"] and b["steps"] == 2 and b["preset"] == "quick"
    assert r.summary["counts"]["utterances"] == 2
    assert (tmp_path / "runs" / "tiny-smoke" / name / "smoke" / "best.pt").exists()
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["train"]["max_steps"] == 2
