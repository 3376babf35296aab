"""Training throughput, one run on one machine, one model and batch: model only vs end to end.

    python scripts/bench_train.py --model demucs --preset quick                        # CPU
    python scripts/bench_train.py --model demucs --preset full --device cuda --batch 64 --bf16 \
        [--reference ../denoiser]    # also time facebookresearch/denoiser's Demucs (a checkout; never copied)

Modes, each a fresh model (seed 0) and Adam, `--warmup` untimed steps, then `--steps` timed steps
(the device synchronized at both ends), repeated `--rounds` times in turn (A B C A B C ...: on a shared
machine drift hits every mode alike); the median round is reported:

- ``model only``: the trainer's optimizer step (`bench.train.trainer.train_step`: forward, loss, backward,
  clipping, Adam) on one pre-made batch already on the device;
- ``end to end, numpy``: the numpy reference data path (`SegmentBatches` in `--workers` DataLoader workers,
  default the preset's ``num_workers``; CPU: torch threads = cores - workers), as the trainer did before;
- ``end to end, torch``: the trainer's default path (`DeviceBatches`: train audio resident on the device,
  segments and noise made there; CPU: torch threads = all cores);
- ``data only, torch``: making the batches alone (no training step), to say where the time goes;
- ``model only, reference``: with ``--reference PATH``, facebookresearch/denoiser's Demucs (imported from
  PATH) with the same config and the same step, loss and batch (its resampler has 56 sinc zero crossings:
  pass ``--set sinc_zeros=56`` to compare like with like).

Prints steps/s, audio seconds per second (batch x segment seconds x steps/s) and the ratio of each mode to
model only, as a Markdown table, with the machine, the load average and the command. ``--profile`` adds
the torch profiler's top operators (model only, reference, end to end torch); ``--sync-debug`` (CUDA)
counts the host-device synchronizations of the end-to-end torch steps (there should be none).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from bench import SAMPLE_RATE  # noqa: E402
from bench.adapters.base import get_adapter  # noqa: E402
from bench.train.batches import DeviceBatches, SegmentBatches, worker_init  # noqa: E402
from bench.data.prepared import PreparedTrack  # noqa: E402
from bench.train.resident import ResidentAudio  # noqa: E402
from bench.corpora.root import prepared_root  # noqa: E402
from bench.data.tracks import load_track  # noqa: E402
from bench.core.env import hardware_label  # noqa: E402
from bench.train.losses import build_loss  # noqa: E402
from bench.protocol import Protocol  # noqa: E402
from bench.train.runconfig import RunConfig  # noqa: E402
from bench.train.trainer import train_step  # noqa: E402


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Setup:
    """What every mode shares: the run configuration, the loss, the prepared track and its audio."""

    def __init__(self, args):
        self.args = args
        self.adapter = get_adapter(args.model).adapter
        overrides = {k: json.loads(v) if v[:1] in "0123456789-[{tfn" else v
                     for k, v in (s.split("=", 1) for s in args.set)}
        train_over = {"max_steps": 1, **({"batch_size": args.batch} if args.batch else {})}
        self.run = RunConfig.resolve(self.adapter, args.preset, overrides, train_over, train=True)
        self.cfg = self.run.train_config
        self.batch = self.cfg["batch_size"]
        self.segment = int(round(self.cfg["segment_seconds"] * SAMPLE_RATE))
        self.workers = self.cfg["num_workers"] if args.workers is None else args.workers
        self.amp = args.device.startswith("cuda") and args.bf16
        self.pt = PreparedTrack(load_track(args.track), Protocol.load(), prepared_root(None))
        self.pt.require()
        self.clean = self.pt.load_split("train")
        self.weights = self.pt.sampling_weights()
        self.audio = ResidentAudio(self.clean, self.weights, args.device)
        self.torch_batches = DeviceBatches(self.audio, self.pt.protocol, self.segment, 0, range(self.batch))
        self.premade = tuple(t.clone() for t in self.torch_batches.batch(10_000))
        self.cores = os.cpu_count() or 1
        self.syncs = []

    def model(self, reference: bool = False):
        torch.manual_seed(0)
        if reference:
            return reference_model(self.args.reference, self.run.model_config).to(self.args.device)
        model = self.adapter.build(**self.run.model_config).to(self.args.device)
        return torch.compile(model) if self.args.compile else model


def reference_model(path: str, config: dict) -> torch.nn.Module:
    """facebookresearch/denoiser's Demucs from a checkout at `path`, with our config's arguments."""
    sys.path.insert(0, str(Path(path).resolve()))
    from denoiser.demucs import Demucs as Reference

    keys = ("chin", "chout", "hidden", "depth", "kernel_size", "stride", "causal", "resample", "growth",
            "max_hidden", "normalize", "glu", "rescale", "floor")
    net = Reference(**{k: config[k] for k in keys if k in config})

    class Waveform(torch.nn.Module):   # (batch, time) -> (batch, time), as our adapters
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)[:, 0]

    return Waveform()


def timed(s: Setup, model, next_batch, threads: int, *, train: bool = True, watch_syncs: bool = False) -> float:
    """Steps per second of `--steps` steps after `--warmup`; `watch_syncs` (CUDA, ``--sync-debug``): count
    the host-device synchronizations of the timed steps (torch.cuda.set_sync_debug_mode) into `s.syncs`."""
    args = s.args
    if args.device == "cpu":
        torch.set_num_threads(max(1, args.threads or threads))
    loss_fn = build_loss(s.cfg["loss"]).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=s.cfg["lr"], betas=tuple(s.cfg["betas"]),
                            weight_decay=s.cfg["weight_decay"]) if train else None
    last = None
    watch = watch_syncs and args.sync_debug and args.device.startswith("cuda")
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            sync(args.device)
            t0 = time.perf_counter()
            if watch:
                caught = warnings.catch_warnings(record=True)
                s.syncs = caught.__enter__()
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
        noisy, clean = next_batch(i)
        noisy, clean = noisy.to(args.device, non_blocking=True), clean.to(args.device, non_blocking=True)
        if train:
            last = train_step(model, model, opt, loss_fn, noisy, clean, lr=s.cfg["lr"], grad_clip=s.cfg["grad_clip"],
                              amp=s.amp)
        else:
            last = noisy
    if watch:
        torch.cuda.set_sync_debug_mode("default")
        caught.__exit__(None, None, None)
    if last is not None:
        float(last.flatten()[0])   # wait for the device
    sync(args.device)
    return args.steps / (time.perf_counter() - t0)


def numpy_mode(s: Setup) -> float:
    data = SegmentBatches(s.clean, s.pt.protocol, s.batch, s.segment, 0, 0, s.weights)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=s.workers,
                                         worker_init_fn=worker_init if s.workers else None,
                                         pin_memory=s.args.device.startswith("cuda"))
    it = iter(loader)
    try:
        return timed(s, s.model(), lambda _i: next(it), s.cores - s.workers)
    finally:
        if s.workers:
            it._shutdown_workers()   # no worker left running into the next mode


#: key: (label, timing function)
MODES = {
    "model": ("model only", lambda s: timed(s, s.model(), lambda _i: s.premade, s.cores)),
    "numpy": ("end to end, numpy", numpy_mode),
    "torch": ("end to end, torch", lambda s: timed(s, s.model(), s.torch_batches.batch, s.cores, watch_syncs=True)),
    "data": ("data only, torch", lambda s: timed(s, None, s.torch_batches.batch, s.cores, train=False)),
    "reference": ("model only, reference", lambda s: timed(s, s.model(reference=True), lambda _i: s.premade, s.cores)),
}


def profile(s: Setup, what: str, steps: int = 5) -> str:
    """The torch profiler's top operators (by self time on the device) over `steps` steps of mode `what`:
    "model" / "reference" (model only) or "torch" (end to end, batches made inside the profile)."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    model = s.model(reference=what == "reference")
    loss_fn = build_loss(s.cfg["loss"]).to(s.args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=s.cfg["lr"])
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if s.args.device.startswith("cuda") else [])

    def step(i):
        with torch.profiler.record_function("batch (segments + noise)"):
            batch = s.torch_batches.batch(100 + i) if what == "torch" else s.premade
        with torch.profiler.record_function("train step"):
            train_step(model, model, opt, loss_fn, *batch, lr=s.cfg["lr"], grad_clip=s.cfg["grad_clip"], amp=s.amp)

    for i in range(2):
        step(i)
    sync(s.args.device)
    with torch_profile(activities=acts) as prof:
        for i in range(steps):
            step(i)
        sync(s.args.device)
    key = "self_cuda_time_total" if s.args.device.startswith("cuda") else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=25)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="demucs")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--track", default="vctk-mini")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=None, help="default: the preset's")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA), as the trainer does")
    ap.add_argument("--compile", action="store_true", help="torch.compile our model")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model config overrides")
    ap.add_argument("--workers", type=int, default=None, help="numpy path's DataLoader workers (default: preset's)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU: torch threads of every mode (default: cores, or cores - workers for numpy)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--modes", default=None, help=f"comma-separated subset of {','.join(MODES)}")
    ap.add_argument("--reference", default=None, help="a checkout of facebookresearch/denoiser (not copied)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--sync-debug", action="store_true",
                    help="CUDA: count host-device synchronizations in the end-to-end torch steps")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    s = Setup(args)
    modes = [m for m in (args.modes.split(",") if args.modes else MODES) if args.reference or m != "reference"]
    results = {m: [] for m in modes}
    for _ in range(args.rounds):
        for m in modes:
            results[m].append(MODES[m][1](s))
            print(f"  {MODES[m][0]}: {results[m][-1]:.3f} steps/s", file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    seconds = s.batch * s.segment / SAMPLE_RATE
    med = {m: statistics.median(v) for m, v in results.items()}
    best = {m: max(v) for m, v in results.items()}
    base, base_best = med.get("model"), best.get("model")
    dev = hardware_label(args.device, s.cores)
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {dev}; {platform.platform()}; {s.cores} cores; torch {torch.__version__}")
    print(f"load average (1 min) before {load0[0]:.2f}, after {load1[0]:.2f}")
    print(f"model {args.model}, preset {args.preset}, model config {json.dumps(s.run.model_config)}")
    print(f"batch {s.batch} x {s.cfg['segment_seconds']} s, loss {json.dumps(s.cfg['loss'])}, amp bf16 {s.amp}, "
          f"numpy workers {s.workers}, torch threads {args.threads or 'default'}; "
          f"train audio resident as {s.audio.dtype} ({s.audio.nbytes / 1e6:.0f} MB)")
    print(f"{args.steps} timed steps after {args.warmup}, {args.rounds} rounds: median and best round (on a shared "
          f"machine the best is the better estimate of the cost)\n")
    print("| mode | steps/s (median) | audio-s/s (median) | vs model only (median) | steps/s (best) | "
          "audio-s/s (best) | vs model only (best) | rounds (steps/s) |")
    print("|---|---|---|---|---|---|---|---|")
    for m, vals in results.items():
        ratio = f"{med[m] / base:.2f}x" if base else "-"
        ratio_best = f"{best[m] / base_best:.2f}x" if base_best else "-"
        print(f"| {MODES[m][0]} | {med[m]:.3f} | {med[m] * seconds:.1f} | {ratio} | {best[m]:.3f} | "
              f"{best[m] * seconds:.1f} | {ratio_best} | {', '.join(f'{v:.3f}' for v in vals)} |")
    if "numpy" in med and "torch" in med:
        print(f"\nend to end, torch / numpy: {med['torch'] / med['numpy']:.2f}x (medians), "
              f"{best['torch'] / best['numpy']:.2f}x (best rounds)")
    if "reference" in med and base:
        print(f"model only, ours / reference: {base / med['reference']:.2f}x (medians), "
              f"{base_best / best['reference']:.2f}x (best rounds)")
    if args.sync_debug and args.device.startswith("cuda"):
        msgs = sorted({str(w.message).splitlines()[0] for w in s.syncs})
        print(f"\nhost-device synchronizations in the timed end-to-end torch steps (last round): {len(s.syncs)}"
              + "".join(f"\n- {m}" for m in msgs[:10]))
    if args.profile:
        for what in [m for m in ("model", "reference", "torch") if m in modes]:
            print(f"\nprofile, {MODES[what][0]} (5 steps):\n```\n{profile(s, what)}\n```")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
