"""Offline real-time factor of causal Demucs (H=48, the paper config) on one CPU thread.

RTF = processing time / audio duration, for one fixed 10 s, 16 kHz input (batch 1), in eval mode
under ``torch.inference_mode``; the median of a few timed repeats after warm-up runs. The process
CPU time is printed too: on a machine whose cores are shared with other jobs, wall time inflates.

    python scripts/bench_demucs_rtf.py [--seconds 10] [--repeats 5] [--threads 1] [--hidden 48]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from baselines.demucs.model import Demucs  # noqa: E402
from bench.adapters.base import count_parameters  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=48)
    ap.add_argument("--sample-rate", type=int, default=16_000)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Demucs(hidden=args.hidden, causal=True).eval()
    n_params = count_parameters(model)
    x = 0.1 * torch.randn(1, int(args.seconds * args.sample_rate), generator=torch.Generator().manual_seed(1))

    times, cpu_times = [], []
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(x)
        for _ in range(args.repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            y = model(x)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    assert y.shape == x.shape

    med = statistics.median(times)
    print(f"model:       causal Demucs H={args.hidden} (depth {model.depth}, kernel {model.kernel_size}, "
          f"stride {model.stride}, resample {model.resample})")
    print(f"parameters:  {n_params:,} ({n_params / 1e6:.2f} M)")
    print(f"lookahead:   {model.lookahead} samples ({model.algorithmic_latency_ms(args.sample_rate):.2f} ms)")
    print(f"input:       {args.seconds:g} s at {args.sample_rate} Hz, threads={torch.get_num_threads()}")
    print(f"times (s):   {', '.join(f'{t:.3f}' for t in times)}")
    print(f"RTF:         {med / args.seconds:.4f} (median {med:.3f} s for {args.seconds:g} s of audio)")
    # CPU time of this process: less sensitive than wall time to other processes sharing the cores
    print(f"CPU-time RTF: {statistics.median(cpu_times) / args.seconds:.4f} (process CPU time; "
          f"best wall-clock RTF {min(times) / args.seconds:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
