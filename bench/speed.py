"""Speed measurements shared by the scorer, `bench check` and the benchmark scripts.

Real-time factor (RTF) = processing time / audio duration, measured on a fixed input (10 s of
seeded noise at speech level by default; model compute does not depend on content), on the CPU
with a given number of torch threads, in eval mode under ``torch.inference_mode``, as the median
of a few repeats after a warm-up run.
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager

import numpy as np
import torch

SAMPLE_RATE = 16000


@contextmanager
def torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def fixed_input(seconds: float = 10.0, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy((0.05 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32))[None]


def measure_rtf(adapter, model: torch.nn.Module, *, seconds: float = 10.0, threads: int = 1, repeats: int = 3,
                max_timed_seconds: float = 30.0) -> float:
    """Offline RTF of `adapter.enhance(model, x)` on a (1, seconds*16000) input on the CPU: the median of
    `repeats` timed calls after one warm-up, fewer (at least one) once the timed calls pass
    `max_timed_seconds`, so that a model far slower than real time does not cost minutes."""
    model = model.to("cpu").eval()
    x = fixed_input(seconds)
    times = []
    with torch_threads(threads), torch.inference_mode():
        adapter.enhance(model, x, clean=x)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            adapter.enhance(model, x, clean=x)
            times.append(time.perf_counter() - t0)
            if sum(times) >= max_timed_seconds:
                break
    return statistics.median(times) / seconds
