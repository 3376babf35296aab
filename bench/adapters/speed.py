"""Every speed measurement of the benchmark (offline and streaming real-time factors). RTF = processing time /
audio duration on a fixed input (seeded noise at speech level: compute does not depend on content), on the CPU
with a given number of torch threads, in eval mode: the median of a few repeats after a warm-up."""

from __future__ import annotations

import copy
import logging
import statistics
import time
from contextlib import contextmanager

import numpy as np
import torch

from bench import SAMPLE_RATE
from bench.adapters.streaming import Streamer, stream

log = logging.getLogger(__name__)
#: the fixed input of the scorer's speed measurement
RTF_SECONDS = 10.0


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
    """Offline RTF of `adapter.enhance(model, x)` on a (1, seconds * SAMPLE_RATE) input on the CPU: the
    median of `repeats` timed calls after one warm-up, fewer (at least one) once the timed calls pass
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


def measure_stream_rtf(streamer: Streamer, *, seconds: float = 10.0, chunk: int | None = None, threads: int = 1,
                       repeats: int = 1, warmup_seconds: float = 1.0) -> dict:
    """Streaming RTF (push `seconds` in chunks of `chunk`, default the hop, then flush), with the CPU time per
    audio time (``cpu_rtf_stream``: less inflated when other jobs share the cores) and each chunk's wall time
    over its duration (median, max: a live device keeps up if every chunk takes less than its duration)."""
    chunk = int(chunk or streamer.hop)
    x = fixed_input(seconds)[0]
    warm = fixed_input(warmup_seconds, seed=1)[0]
    dtype, device = streamer._target() if hasattr(streamer, "_target") else (torch.float32, torch.device("cpu"))
    x, warm = x.to(dtype=dtype, device=device), warm.to(dtype=dtype, device=device)
    totals, cpu_totals, per_chunk = [], [], []
    with torch_threads(threads):
        stream(streamer, warm, chunk)
        for _ in range(repeats):
            streamer.reset()
            c_start, t_start = time.process_time(), time.perf_counter()
            for pos in range(0, x.shape[-1], chunk):
                t0 = time.perf_counter()
                streamer.push(x[pos:pos + chunk])
                per_chunk.append(time.perf_counter() - t0)
            streamer.flush()
            totals.append(time.perf_counter() - t_start)
            cpu_totals.append(time.process_time() - c_start)
    dur = chunk / streamer.sample_rate
    return {"rtf_stream": statistics.median(totals) / seconds, "cpu_rtf_stream": statistics.median(cpu_totals) / seconds,
            "chunk_samples": chunk, "chunk_rtf_median": statistics.median(per_chunk) / dur,
            "chunk_rtf_max": max(per_chunk) / dur, "seconds": seconds, "threads": threads, "repeats": repeats}


def streaming_speed(adapter, model, *, seconds: float = 10.0) -> dict:
    """``rtf_stream`` (the hop, 1 thread, on the CPU, on a copy of a model held elsewhere),
    ``stream_chunk_samples`` and the streamer's ``latency_ms`` for a causal adapter with a streamer, else {}."""
    if not adapter.causal:
        return {}
    cpu_model = model if next(model.parameters(), torch.zeros(0)).device.type == "cpu" else copy.deepcopy(model).cpu()
    if (streamer := adapter.streamer(cpu_model)) is None:
        return {}
    m = measure_stream_rtf(streamer, seconds=seconds, threads=1)
    return {"rtf_stream": round(m["rtf_stream"], 5), "stream_chunk_samples": int(m["chunk_samples"]),
            "latency_ms": float(streamer.latency_ms)}


def online_speed(adapter, model) -> dict:
    """latency_ms (the adapter's stated lookahead) and, with a streamer, rtf_stream + stream_chunk_samples.
    Informative columns: a failure is logged and leaves them empty, it never blocks scoring."""
    out = {}
    try:
        out.update(streaming_speed(adapter, model))
        if (latency := adapter.latency_ms(model)) is not None:
            out["latency_ms"] = float(latency)
    except Exception as exc:  # noqa: BLE001
        log.warning("online speed of %s not measured: %s", adapter.name, exc)
    return out
