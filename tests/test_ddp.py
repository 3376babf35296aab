"""Data-parallel training (bench/train/distributed.py, bench/train/trainer.py) with 2 CPU processes (gloo), a tiny model
and a tiny prepared track, a few steps:

- 2 processes with a slice of the global batch each end with the weights of 1 process with the whole
  batch, within a tolerance: every item draws the same segment and noise in both (per-item randomness),
  each process's loss is the mean over its slice and DDP averages the gradients, so the update is the
  same mathematically; only float32 summation order differs (the all-reduce adds the two halves' mean
  gradients instead of summing all items at once). Tolerance: max |w_2proc - w_1proc| <= 1e-5, with lr
  1e-3 over 4 Adam steps (each step moves a weight by up to ~1e-3, so a process drawing the wrong items
  misses by ~1e-3, which this test was checked to catch). Observed here: 0, bit for bit (weights and
  Adam moments), on torch 2.11 CPU.
- rank 0 alone writes: one log row per validation (not one per process);
- resume under DDP: 2 steps, then resumed to 4, gives the weights of 4 uninterrupted steps, bit for bit
  (gloo's all-reduce of two ranks is deterministic).
"""

from __future__ import annotations

import csv

import pytest
import torch

from bench import REPO_ROOT
from bench.adapters.base import Adapter, Found
from bench.core.errors import BenchError
from bench.train.runconfig import RunConfig
from bench.train.trainer import load_checkpoint, train

from conftest import make_tiny_prepared

TOL = 1e-5


class TinyNet(torch.nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv1d(1, hidden, 9, padding=4), torch.nn.Tanh(),
                                       torch.nn.Conv1d(hidden, 1, 9, padding=4))

    def forward(self, x):
        return x + self.net(x[:, None])[:, 0]


class DDPAdapter(Adapter):
    name = "tiny-ddp"
    description = "test"
    trainable = True
    config = {"hidden": 8}
    train_config = {"batch_size": 4, "segment_seconds": 0.25, "lr": 1e-3, "schedule": "constant",
                    "checkpoint_every": 2, "valid_every": 100, "log_every": 2, "loss": {"l1": 1.0, "mrstft": 1.0}}

    def build(self, hidden=8):
        return TinyNet(hidden)


def _found():
    return Found(adapter=DDPAdapter(), kind="submission", path=REPO_ROOT / "tests" / "test_ddp.py")


def _cfg(**train) -> RunConfig:
    return RunConfig.resolve(DDPAdapter(), None, train_overrides=train, train=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny track, and the last.pt of 4 steps with 1 process and with 2 processes."""
    root = tmp_path_factory.mktemp("ddp")
    pt = make_tiny_prepared(root, "tiny-ddp", duration=0.6)
    train(_found(), pt, _cfg(max_steps=4), run_id="one", runs_dir=root / "runs")
    model, budget, _ = train(_found(), pt, _cfg(max_steps=4), run_id="two", runs_dir=root / "runs", nproc=2)
    assert budget["steps"] == 4 and model is not None
    rdir = root / "runs" / "tiny-ddp" / "tiny-ddp"
    return pt, root / "runs", load_checkpoint(rdir / "one" / "last.pt"), load_checkpoint(rdir / "two" / "last.pt")


def test_two_processes_train_like_one_with_the_global_batch(runs):
    _, runs_dir, one, two = runs
    assert one["step"] == two["step"] == 4
    torch.manual_seed(0)   # the trainer's seed: the initial weights
    init = TinyNet().state_dict()
    moved = max(float((one["model"][k] - init[k]).abs().max()) for k in one["model"])
    diff = max(float((one["model"][k] - two["model"][k]).abs().max()) for k in one["model"])
    m1, m2 = (torch.cat([v["exp_avg"].flatten() for v in ck["optimizer"]["state"].values()]) for ck in (one, two))
    print(f"max |w_2proc - w_1proc| = {diff:.2e}, max |w - w_init| = {moved:.2e}, "
          f"max |Adam m_2proc - m_1proc| = {float((m1 - m2).abs().max()):.2e} (of {float(m1.abs().max()):.2e})")
    assert diff <= TOL < moved, (diff, moved)
    assert torch.allclose(m1, m2, rtol=1e-4, atol=1e-7)
    assert two["rank_rng"] is not None and len(two["rank_rng"]) == 2   # both ranks' RNG states, for resume
    with open(runs_dir / "tiny-ddp" / "tiny-ddp" / "two" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["4"]       # rank 0 alone wrote the log: one validation, one row
    assert float(rows[0]["valid_scale"]) > 0


def test_resume_under_ddp_is_exact(runs):
    pt, runs_dir, _, two = runs
    train(_found(), pt, _cfg(max_steps=2), run_id="resumed", runs_dir=runs_dir, nproc=2)
    ck = load_checkpoint(runs_dir / "tiny-ddp" / "tiny-ddp" / "resumed" / "last.pt")
    rc = RunConfig.from_checkpoint(ck).with_budget({"max_steps": 4})
    train(_found(), pt, rc, run_id="resumed", runs_dir=runs_dir, nproc=2, resume=True)
    resumed = load_checkpoint(runs_dir / "tiny-ddp" / "tiny-ddp" / "resumed" / "last.pt")
    assert resumed["step"] == 4
    for k in two["model"]:
        assert torch.equal(resumed["model"][k], two["model"][k]), k


def test_the_global_batch_must_split_evenly(runs, tmp_path):
    pt = runs[0]
    with pytest.raises(BenchError, match="not a multiple of the 3 processes"):
        train(_found(), pt, _cfg(max_steps=1), run_id="odd", runs_dir=tmp_path, nproc=3)
