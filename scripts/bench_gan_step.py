"""Cost of a training step of `demucs-gan` against its twin `demucs` on the CPU: the trainer's generator
step (forward, L1 + MRSTFT loss, backward, AdamW update) on one fixed batch of the preset's shape, with and
without the adversarial half (discriminator update + the generator's LSGAN / feature-matching terms,
bench/train/adversarial.py), timed alternately (plain, GAN, plain, ...) so that load from other jobs on a
shared machine hits both alike. Prints the median wall and process-CPU time per step of each and their
ratio.

    python scripts/bench_gan_step.py [--preset quick] [--steps 10] [--threads 1] [--width W]
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
from bench.train.adversarial import build, resolve_config  # noqa: E402
from bench.train.losses import build_loss  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the quick trainer on 2 cores uses 1)")
    ap.add_argument("--width", type=float, default=None, help="override the discriminator width")
    ap.add_argument("--window", type=float, default=None, help="override the discriminator's segment_seconds")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    a = get_adapter("demucs-gan").adapter
    cfg = {**a.train_config, **a.presets[args.preset]["train"]}
    adv_cfg = resolve_config(cfg["adversarial"])
    if args.width is not None:
        adv_cfg["discriminator"] = {**adv_cfg["discriminator"], "width": args.width}
    if args.window is not None:
        adv_cfg["segment_seconds"] = args.window
    torch.manual_seed(0)
    model = a.build(**a.resolved_config(args.preset))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"])
    loss_fn = build_loss(cfg["loss"])
    adv = build(a, adv_cfg, "cpu", use_amp=False)
    n = int(round(cfg["segment_seconds"] * SAMPLE_RATE))
    clean = 0.1 * torch.randn(cfg["batch_size"], n)
    noisy = clean + 0.05 * torch.randn_like(clean)

    def step(gan: bool):
        est = model(noisy)
        loss, _ = loss_fn(est, clean)
        if gan:
            extra, _ = adv.step(clean, est, 0, 1.0)
            loss = loss + extra
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = {False: [], True: []}
    for i in range(args.steps + 1):
        for gan in (False, True):
            w, c = time.perf_counter(), time.process_time()
            step(gan)
            if i:   # the first of each is a warm-up
                times[gan].append((time.perf_counter() - w, time.process_time() - c))
    med = {g: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for g, v in times.items()}
    print(f"preset {args.preset}: batch {cfg['batch_size']} x {cfg['segment_seconds']} s, {args.threads} thread(s), "
          f"generator {count_parameters(model):,} parameters, discriminator {count_parameters(adv.discriminator):,} "
          f"({adv_cfg['discriminator']}, window {adv_cfg['segment_seconds']} s)")
    for g, name in ((False, "demucs"), (True, "demucs-gan")):
        print(f"  {name:11s} {med[g][0]:.3f} s/step wall ({1 / med[g][0]:.2f} steps/s), {med[g][1]:.3f} s CPU")
    print(f"  ratio gan/plain: wall {med[True][0] / med[False][0]:.2f}x, CPU {med[True][1] / med[False][1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
