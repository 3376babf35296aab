"""Cost of `demucs-attn` against its twin `demucs` on the CPU, in one run: the trainer's step (forward, the
preset's loss, backward, AdamW update) on one fixed batch of the preset's shape, then the scorer's offline RTF
and streaming RTF (bench/adapters/speed.py: 10 s of fixed input, 1 thread; streaming in chunks of the hop),
each timed alternately (demucs, demucs-attn, demucs, ...) so that load from other jobs on a shared machine
hits both alike. Prints the parameter counts, the medians of each and their ratios.

    python scripts/bench_attn_step.py [--preset quick] [--steps 6] [--threads 1] [--rtf-repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import SAMPLE_RATE  # noqa: E402
from bench.adapters.base import count_parameters, get_adapter  # noqa: E402
from bench.adapters.speed import measure_rtf, measure_stream_rtf  # noqa: E402
from bench.train.losses import build_loss  # noqa: E402

NAMES = ("demucs", "demucs-attn")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the quick trainer on 2 cores uses 1)")
    ap.add_argument("--rtf-repeats", type=int, default=3, help="alternate RTF measurements of each (0: none)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps, params, models = {}, {}, {}
    for name in NAMES:
        a = get_adapter(name).adapter
        cfg = {**a.train_config, **a.presets[args.preset]["train"]}
        torch.manual_seed(0)
        model = a.build(**a.resolved_config(args.preset)).train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"])
        loss_fn = build_loss(cfg["loss"])
        params[name] = count_parameters(model)
        models[name] = (a, model)

        def step(model=model, opt=opt, loss_fn=loss_fn):
            loss, _ = loss_fn(model(noisy), clean)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        steps[name] = step
    n = int(round(cfg["segment_seconds"] * SAMPLE_RATE))
    g = torch.Generator().manual_seed(0)
    clean = 0.1 * torch.randn(cfg["batch_size"], n, generator=g)
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=g)
    times = {name: [] for name in NAMES}
    for i in range(args.steps + 1):
        for name in NAMES:
            w, c = time.perf_counter(), time.process_time()
            steps[name]()
            if i:   # the first of each is a warm-up
                times[name].append((time.perf_counter() - w, time.process_time() - c))
    med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}
    print(f"preset {args.preset}: batch {cfg['batch_size']} x {cfg['segment_seconds']} s, {args.threads} thread(s), "
          f"median of {args.steps} steps (forward + loss + backward + AdamW)")
    for name in NAMES:
        print(f"  {name:12s} {params[name]:>10,} parameters  {med[name][0]:.3f} s/step wall, {med[name][1]:.3f} s CPU")
    a, b = med[NAMES[1]], med[NAMES[0]]
    print(f"  ratio attn/lstm: wall {a[0] / b[0]:.2f}x, CPU {a[1] / b[1]:.2f}x")
    if args.rtf_repeats > 0:
        rtf(models, args.rtf_repeats)
    return 0


def rtf(models: dict, repeats: int) -> None:
    """Offline and streaming RTF of each model (inference, 1 thread), alternately, medians."""
    got = {name: {"rtf": [], "rtf_stream": [], "cpu_rtf_stream": []} for name in NAMES}
    for _ in range(repeats):
        for name in NAMES:
            a, model = models[name]
            model = model.eval()
            got[name]["rtf"].append(measure_rtf(a, model, threads=1, repeats=1))
            m = measure_stream_rtf(a.streamer(model), threads=1)
            got[name]["rtf_stream"].append(m["rtf_stream"])
            got[name]["cpu_rtf_stream"].append(m["cpu_rtf_stream"])
            chunk = m["chunk_samples"]
    med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in got.items()}
    print(f"inference on 10 s of fixed input, 1 thread, median of {repeats} alternating measurements "
          f"(streaming: chunks of {chunk} samples)")
    for name in NAMES:
        print(f"  {name:12s} RTF {med[name]['rtf']:.4f}   streaming RTF {med[name]['rtf_stream']:.4f} "
              f"(CPU {med[name]['cpu_rtf_stream']:.4f})")
    a, b = med[NAMES[1]], med[NAMES[0]]
    print(f"  ratio attn/lstm: RTF {a['rtf'] / b['rtf']:.2f}x, streaming RTF {a['rtf_stream'] / b['rtf_stream']:.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
