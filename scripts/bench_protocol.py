"""Micro-benchmark: training noise from the numpy reference (one segment at a time, float64) vs the
batched torch path (bench/protocol/batched.py, float32), on the CPU and on CUDA when available.

    python scripts/bench_protocol.py [--protocol stft-v1] [--batch 16] [--seconds 4] [--repeats 5] [--threads N]

Segments are real vctk-mini train speech (cut from the resolved data root). Prints ms per segment
(median and fastest of the repeats; on a shared machine the fastest is the better estimate of the
cost) for each path side by side and the speed-up over the reference (from the medians).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def segments(batch: int, n: int) -> np.ndarray:
    from bench.core.audio import load_16k
    from bench.corpora.root import resolve_data_root
    from bench.data.tracks import load_track

    track = load_track("vctk-mini")
    root = resolve_data_root(None, track)
    out = []
    for u in (u for u in track.utterances() if u.split == "train"):
        x = load_16k(root / u.path)
        if len(x) >= n:
            out.append(x[:n])
        if len(out) == batch:
            return np.stack(out).astype(np.float32)
    raise SystemExit(f"not enough train utterances of {n} samples")


def timed(fn, repeats: int, sync=lambda: None) -> tuple[float, float]:
    fn()  # warm-up (allocations, kernels, window cache)
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main(argv=None) -> int:
    sys.path.insert(0, str(REPO))
    import torch

    from bench.core.env import hardware_label
    from bench.protocol import Protocol
    from bench.protocol.batched import BatchedProtocol

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", default="stft-v1")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    proto = Protocol.load(args.protocol)
    x = segments(args.batch, int(round(args.seconds * proto.sample_rate)))
    B = args.batch

    def reference():
        for i in range(B):
            proto.apply(x[i], f"bench@{i}", stream=f"train:0:0:{i}")

    rows = [("numpy float64 reference, one segment at a time (CPU)", timed(reference, args.repeats))]
    cpu = BatchedProtocol(proto, "cpu")
    xt = torch.from_numpy(x)
    rows.append((f"torch float32 batched (CPU, {torch.get_num_threads()} threads)",
                 timed(lambda: cpu.apply(xt, cpu.generator(0, 0)), args.repeats)))
    if torch.cuda.is_available():
        gpu = BatchedProtocol(proto, "cuda")
        xg = xt.cuda()
        rows.append((f"torch float32 batched ({torch.cuda.get_device_name()})",
                     timed(lambda: gpu.apply(xg, gpu.generator(0, 0)), args.repeats, torch.cuda.synchronize)))
    print(f"protocol {proto.name}: batch {B} x {args.seconds:g} s segments, {args.repeats} runs; "
          f"{hardware_label()}")
    print(f"  {'path':<58} {'ms/segment median (fastest)':>28}  {'speed-up':>8}")
    ref = rows[0][1][0]
    for name, (med, best) in rows:
        print(f"  {name:<58} {1000 * med / B:15.2f} ({1000 * best / B:7.2f})     x{ref / med:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
