"""Latency and real-time factors of every causal adapter: algorithmic latency, streaming RTF at the
model's natural hop and offline RTF, on 1 CPU thread; written to a JSON file and printed as a table.

    python scripts/bench_streaming.py [--seconds 10] [--repeats 3] [--output docs/streaming-benchmark.json]
                                      [--models demucs ...] [--chunks 97 1024]

Definitions (see bench/adapters/streaming.py):

* algorithmic latency (ms) = lookahead / 16 kHz: the input an output sample must wait for, compute
  time excluded (``adapter.latency_ms(model)``, else the streamer's ``delay``);
* latency including the hop = (lookahead + hop - 1) / 16 kHz: worst case when the input arrives in
  blocks of one hop;
* streaming RTF = wall time to push ``--seconds`` of audio through the streamer in chunks of one hop
  (the model's total stride) and flush, / ``--seconds`` (median of ``--repeats``, after a warm-up);
  ``cpu_rtf_stream`` is the same with the process CPU time (less inflated when other jobs share the
  cores); ``chunk_rtf_max`` is the slowest single chunk / its duration;
* offline RTF = `bench.adapters.speed.measure_rtf` (whole input at once, 10 s, batch 1);
* floor = the time to read every weight once (one GEMV per weight matrix) / the hop's duration: a
  batch-1 streamer must do at least that per hop, so it bounds the streaming RTF from below on this
  machine (for H=48 Demucs: 75 MB of float32 weights per 16 ms hop; memory bandwidth, not FLOPs).

Models are built with their adapter's default config and untrained (seeded) weights: compute does
not depend on the weights. Demucs is the paper's H=48 config (18.87 M parameters). The load average
is recorded next to every timing: on a shared machine wall-clock RTFs inflate with the load.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.adapters.base import count_parameters, discover  # noqa: E402
from bench.core.env import cpu_model  # noqa: E402
from bench.adapters.speed import measure_rtf  # noqa: E402
from bench.adapters.speed import measure_stream_rtf  # noqa: E402

TARGET_LATENCY_MS = 40.0     # DNS-challenge real-time track rule (algorithmic latency)
TARGET_RTF_STREAM = 0.5      # this benchmark's goal for 1 CPU thread at the natural hop


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def weight_read_floor_ms(model, repeats: int = 20) -> tuple[float, float, float]:
    """(MB of float weights, median wall and CPU ms to read them all once): one matrix-vector product per weight
    matrix of the model (every parameter with 2+ dims as a 2-D matrix). Streaming one hop of a
    batch-1 model must read every weight at least once, so this bounds the per-hop time from below
    on this machine (memory bandwidth), whatever the implementation."""
    import statistics

    mats = [p.detach().reshape(p.shape[0], -1).contiguous() for p in model.parameters() if p.dim() >= 2]
    vecs = [torch.randn(m.shape[1], 1, dtype=m.dtype) for m in mats]
    mb = sum(m.numel() * m.element_size() for m in mats) / 1e6
    times, cpu = [], []
    with torch.inference_mode():
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            for m, v in zip(mats, vecs):
                torch.mm(m, v)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return mb, 1e3 * statistics.median(times), 1e3 * statistics.median(cpu)


def bench_adapter(name: str, adapter, *, seconds: float, repeats: int, chunks: list[int]) -> dict:
    torch.manual_seed(0)
    model = adapter.build(**adapter.resolved_config()).eval()
    row: dict = {"model": name, "config": adapter.resolved_config(), "parameters": count_parameters(model)}
    streamer = adapter.streamer(model)
    latency = adapter.latency_ms(model) if hasattr(adapter, "latency_ms") else None
    if latency is None and streamer is not None:
        latency = streamer.latency_ms
    row["latency_ms"] = None if latency is None else round(float(latency), 3)
    row["streamer"] = None if streamer is None else type(streamer).__name__
    if streamer is not None:
        row["delay_samples"] = streamer.delay
        row["hop_samples"] = streamer.hop
        row["latency_with_hop_ms"] = round(streamer.latency_with_hop_ms, 3)
        mb, floor_ms, floor_cpu_ms = weight_read_floor_ms(model)
        hop_ms = 1e3 * streamer.hop / streamer.sample_rate
        row["weights_mb"] = round(mb, 1)
        row["weight_read_floor_ms"] = round(floor_ms, 3)
        row["rtf_stream_floor"] = round(floor_ms / hop_ms, 4)
        row["cpu_rtf_stream_floor"] = round(floor_cpu_ms / hop_ms, 4)
        row["load_before_stream"] = load()
        m = measure_stream_rtf(streamer, seconds=seconds, chunk=streamer.hop, threads=1, repeats=repeats)
        row["load_after_stream"] = load()
        row.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()
                    if k in ("rtf_stream", "cpu_rtf_stream", "chunk_samples", "chunk_rtf_median", "chunk_rtf_max")})
        row["other_chunks"] = []
        for c in chunks:
            mc = measure_stream_rtf(streamer, seconds=seconds, chunk=c, threads=1, repeats=1)
            row["other_chunks"].append({"chunk_samples": c, "rtf_stream": round(mc["rtf_stream"], 4),
                                        "cpu_rtf_stream": round(mc["cpu_rtf_stream"], 4), "load": load()})
    row["load_before_offline"] = load()
    c0 = time.process_time()
    row["rtf_offline"] = round(measure_rtf(adapter, model, seconds=seconds, threads=1, repeats=repeats), 4)
    row["cpu_seconds_offline_total"] = round(time.process_time() - c0, 2)
    row["load_after_offline"] = load()
    row["meets_latency_target"] = None if row["latency_ms"] is None else row["latency_ms"] <= TARGET_LATENCY_MS
    row["meets_rtf_stream_target"] = None if streamer is None else row["rtf_stream"] < TARGET_RTF_STREAM
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="input length for every RTF (default 10 s)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", nargs="*", default=None, help="only these causal adapters")
    ap.add_argument("--chunks", nargs="*", type=int, default=[], help="also time these chunk sizes (samples)")
    ap.add_argument("--output", default=str(ROOT / "docs" / "streaming-benchmark.json"))
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    found = {n: f for n, f in sorted(discover().items()) if f.adapter.causal and not f.adapter.oracle}
    if args.models:
        found = {n: f for n, f in found.items() if n in args.models}
    rows = []
    for name, f in found.items():
        print(f"timing {name} ... (load {load()})", flush=True)
        rows.append(bench_adapter(name, f.adapter, seconds=args.seconds, repeats=args.repeats, chunks=args.chunks))

    record = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cores": os.cpu_count(), "threads": 1, "torch": torch.__version__,
        "python": platform.python_version(), "input_seconds": args.seconds, "repeats": args.repeats,
        "targets": {"latency_ms_max": TARGET_LATENCY_MS, "rtf_stream_max": TARGET_RTF_STREAM},
        "definitions": {
            "latency_ms": "algorithmic latency: lookahead samples / 16 kHz (compute time excluded)",
            "latency_with_hop_ms": "(lookahead + hop - 1) / 16 kHz: worst case with input in blocks of one hop",
            "rtf_stream": "wall time / audio time, chunks of one hop, 1 thread, median of repeats",
            "cpu_rtf_stream": "process CPU time / audio time, same run",
            "rtf_stream_floor": "weight_read_floor_ms / hop duration: reading every weight once per hop "
                                "(one GEMV per weight matrix, fp32) - the memory-bandwidth bound of batch-1 streaming",
            "cpu_rtf_stream_floor": "the same with process CPU time",
            "rtf_offline": "bench.adapters.speed.measure_rtf: whole input at once, 1 thread",
            "load": "1/5/15-minute load averages (os.getloadavg) of the machine around the timing",
        },
        "models": rows,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"causal adapters, 1 CPU thread ({record['cpu']}), {args.seconds:g} s input")
    for col in ("model", "params", "latency ms", "+hop ms", "hop", "RTF stream", "CPU RTF stream",
                "floor", "RTF offline", "load"):
        t.add_column(col, justify="right")
    def fmt(v, nd=3):
        return "-" if v is None else f"{v:.{nd}f}"

    for r in rows:
        t.add_row(r["model"], f"{r['parameters']:,}", fmt(r["latency_ms"], 2), fmt(r.get("latency_with_hop_ms"), 2),
                  str(r.get("hop_samples", "-")), fmt(r.get("rtf_stream")), fmt(r.get("cpu_rtf_stream")),
                  fmt(r.get("rtf_stream_floor")), fmt(r["rtf_offline"]),
                  f"{r.get('load_before_stream', r['load_before_offline'])[0]:.2f}")
    Console(width=max(120, Console().width)).print(t)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
