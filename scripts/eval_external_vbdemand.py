"""PESQ-WB and STOI of the external reference systems on the real VoiceBank-DEMAND pairs of
../shared/data/vbdemand-sample (35 pairs, 16 kHz), against the noisy input; with the wall time per
file and the CPU real-time factor at 1 thread (`bench.adapters.speed.measure_rtf`, 10 s input).

    python scripts/eval_external_vbdemand.py            # every external adapter whose package is installed
    python scripts/eval_external_vbdemand.py dtln gtcrn --limit 5

Each utterance is enhanced alone (batch 1, full length) under torch.inference_mode with 1 torch thread,
quantized to 16 bits as the scorer does, and scored with bench.metrics.registry. Out-of-protocol sanity check:
the VoiceBank-DEMAND speakers p232/p257 are its test speakers, p287 one of its training speakers (some
of these systems saw VoiceBank-DEMAND or VCTK in training; see each model card).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import REPO_ROOT  # noqa: E402
from bench.adapters.base import discover  # noqa: E402
from bench.core.audio import from_pcm16, load_16k, to_pcm16  # noqa: E402
from bench.core.errors import AdapterError  # noqa: E402
from bench.metrics.registry import pesq_wb, stoi  # noqa: E402
from bench.adapters.speed import measure_rtf, torch_threads  # noqa: E402


def data_root() -> Path:
    env = os.environ.get("BENCH_DATA_ROOT")
    return Path(env).expanduser() if env else Path(REPO_ROOT).parent / "shared" / "data"


def pairs(limit: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    folder = data_root() / "vbdemand-sample"
    with open(folder / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:limit]
    return [(r["utt_id"], load_16k(folder / r["clean"]), load_16k(folder / r["noisy"])) for r in rows]


def external_adapters() -> dict:
    return {n: f.adapter for n, f in sorted(discover().items()) if getattr(f.adapter, "external", False)}


def score(data, enhance) -> dict:
    pesq, st, secs = [], [], []
    for _, clean, noisy in data:
        t0 = time.perf_counter()
        est = enhance(noisy)
        secs.append(time.perf_counter() - t0)
        est = from_pcm16(to_pcm16(est))
        pesq.append(pesq_wb(clean, est))
        st.append(stoi(clean, est))
    return {"pesq_wb": float(np.mean(pesq)), "stoi": float(np.mean(st)), "sec_per_file": float(np.mean(secs))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="external adapters (default: all whose package is installed)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N pairs of the manifest")
    ap.add_argument("--no-rtf", action="store_true", help="skip the 1-thread RTF measurement")
    args = ap.parse_args(argv)

    adapters = external_adapters()
    names = args.names or list(adapters)
    data = pairs(args.limit)
    audio_s = sum(n.shape[0] for _, _, n in data) / 16000
    print(f"{len(data)} vbdemand-sample pairs, {audio_s:.1f} s of audio; 1 torch thread, batch 1, CPU")
    rows = [("noisy", score(data, lambda x: x), None)]
    for name in names:
        if name not in adapters:
            print(f"{name}: not an external adapter (known: {', '.join(adapters)})", file=sys.stderr)
            return 2
        a = adapters[name]
        try:
            model = a.build(**a.config).eval()
        except AdapterError as exc:
            print(f"{name}: skipped ({exc.message})", file=sys.stderr)
            continue

        def enhance(x, a=a, model=model):
            return a.enhance(model, torch.from_numpy(x)[None])[0].numpy()

        with torch_threads(1), torch.inference_mode():
            res = score(data, enhance)
        rtf = None if args.no_rtf else measure_rtf(a, model, seconds=10.0, threads=1, repeats=3)
        rows.append((name, res, rtf))
        print(f"  done {name}", file=sys.stderr, flush=True)

    base = rows[0][1]
    print("\n| system | PESQ-WB | Δ | STOI | Δ | s per file | RTF (1 thread) |")
    print("|---|---|---|---|---|---|---|")
    for name, r, rtf in rows:
        print(f"| {name} | {r['pesq_wb']:.3f} | {r['pesq_wb'] - base['pesq_wb']:+.3f} | {r['stoi']:.4f} | "
              f"{r['stoi'] - base['stoi']:+.4f} | {r['sec_per_file'] if name != 'noisy' else 0:.3f} | "
              f"{'-' if rtf is None else f'{rtf:.3f}'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
