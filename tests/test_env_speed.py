"""The environment record's commit (also on a copy of the tree without a usable .git) and the
offline RTF measurement's time cap."""

from __future__ import annotations

import time

import torch

from bench.core import env
from bench.adapters.speed import measure_rtf


def test_git_state_reads_the_repository():
    g = env.git_state()
    assert g["commit"] is None or len(g["commit"]) == 40


def test_stated_commit_wins_over_a_stale_git(monkeypatch):
    monkeypatch.setenv("BENCH_GIT_COMMIT", "0" * 40)
    monkeypatch.setenv("BENCH_GIT_DIRTY", "0")
    assert env.git_state() == {"commit": "0" * 40, "dirty": False, "dirty_paths": []}
    monkeypatch.delenv("BENCH_GIT_DIRTY")
    assert env.git_state() == {"commit": "0" * 40, "dirty": None, "dirty_paths": []}


class _Slow:
    """An adapter stand-in whose enhance sleeps: counts the calls."""

    def __init__(self, seconds):
        self.seconds, self.calls = seconds, 0

    def enhance(self, model, x, clean=None):
        self.calls += 1
        time.sleep(self.seconds)
        return x


def test_measure_rtf_repeats_and_stops_early_for_slow_models():
    fast = _Slow(0.01)
    rtf = measure_rtf(fast, torch.nn.Identity(), seconds=1.0, repeats=3)
    assert fast.calls == 4 and 0.005 < rtf < 0.2        # warm-up + 3 timed calls
    slow = _Slow(0.2)
    measure_rtf(slow, torch.nn.Identity(), seconds=1.0, repeats=3, max_timed_seconds=0.1)
    assert slow.calls == 2                               # warm-up + 1 timed call past the cap
