"""Live denoising demo: microphone -> causal model (streaming) -> speakers / headphones, at 16 kHz.

    python scripts/live_demo.py --run demucs@RUN_ID [--chunk 256] [--input DEV] [--output DEV] [--seconds 30]
    python scripts/live_demo.py --run CHECKPOINT.pt --simulate noisy.wav --save out.wav   # no audio hardware

The model runs through its adapter's streamer (bench/adapters/streaming.py) inside the audio callback: every
block of ``--chunk`` input samples is pushed, and the enhanced samples that come out are played. The
output is played ``ceil(delay / chunk) * chunk`` samples late (the model's algorithmic latency rounded
up to whole blocks); until then silence is played.
The audio device adds its own buffering on top. Needs the `sounddevice` package (PortAudio), which the
benchmark itself does not depend on: ``pip install sounddevice``. ``--simulate`` runs the same
callback on a file, block by block, without any audio device (and without sounddevice).

Use headphones: with loudspeakers the enhanced output feeds back into the microphone.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SAMPLE_RATE = 16000


class LiveProcessor:
    """The audio callback's work: push a block, return exactly one block (zeros until the delay is filled)."""

    def __init__(self, streamer):
        self.streamer = streamer
        self.fifo: collections.deque = collections.deque()
        self.buffered = 0
        self.times: list[float] = []

    def __call__(self, block: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        y = self.streamer.push(block.astype(np.float32)).numpy()
        self.times.append(time.perf_counter() - t0)
        if y.size:
            self.fifo.append(y)
            self.buffered += y.size
        out = np.zeros(len(block), dtype=np.float32)
        need, pos = len(block), 0
        if self.buffered >= need:           # else: still inside the initial delay (or an underrun): silence
            while pos < need:
                head = self.fifo[0]
                take = min(need - pos, head.size)
                out[pos:pos + take] = head[:take]
                if take == head.size:
                    self.fifo.popleft()
                else:
                    self.fifo[0] = head[take:]
                pos += take
            self.buffered -= need
        return out

    def report(self, chunk: int) -> str:
        if not self.times:
            return "no blocks processed"
        dur = chunk / SAMPLE_RATE
        t = sorted(self.times)
        return (f"{len(t)} blocks: compute per block median {1e3 * statistics.median(t):.2f} ms, "
                f"p99 {1e3 * t[int(0.99 * (len(t) - 1))]:.2f} ms, max {1e3 * t[-1]:.2f} ms "
                f"(block = {1e3 * dur:.2f} ms; real time needs < {1e3 * dur:.2f} ms)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="results run folder, MODEL@RUN_ID, checkpoint .pt or adapter name")
    ap.add_argument("--chunk", type=int, default=None, help="block size in samples (default: the model's hop)")
    ap.add_argument("--input", default=None, help="input device (sounddevice name or index)")
    ap.add_argument("--output", default=None, help="output device")
    ap.add_argument("--seconds", type=float, default=30.0, help="how long to run live")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--simulate", default=None, metavar="IN", help="run the callback on this file instead of a microphone")
    ap.add_argument("--save", default=None, metavar="OUT.wav", help="with --simulate: write the played output")
    args = ap.parse_args(argv)

    import torch

    from bench.run.enhance import resolve_model
    from bench.core.errors import BenchError

    torch.set_num_threads(args.threads)
    try:
        adapter, model, desc = resolve_model(args.run)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = model.to("cpu").eval()
    streamer = adapter.streamer(model) if adapter.causal else None
    if streamer is None:
        print(f"error: {adapter.name} has no streaming implementation (only causal adapters with a streamer)",
              file=sys.stderr)
        return 2
    chunk = args.chunk or streamer.hop
    proc = LiveProcessor(streamer)
    late = -(-streamer.delay // chunk) * chunk
    print(f"{desc}: algorithmic latency {streamer.latency_ms:.2f} ms ({streamer.delay} samples), blocks of {chunk} "
          f"samples ({1e3 * chunk / SAMPLE_RATE:.2f} ms): output played {late} samples ({1e3 * late / SAMPLE_RATE:.2f} ms) "
          "after the input, plus the audio device's buffering")

    if args.simulate:
        from bench.core.audio import load_16k, write_wav_pcm16

        x = load_16k(args.simulate)
        out = [proc(x[i:i + chunk]) for i in range(0, len(x) - chunk + 1, chunk)]
        y = np.concatenate(out) if out else np.zeros(0, np.float32)
        print(proc.report(chunk))
        if args.save:
            write_wav_pcm16(args.save, y)
            print(f"wrote {args.save} (as played live: {late} samples late, the delay rounded up to whole blocks)")
        return 0

    try:
        import sounddevice as sd
    except ImportError:
        print("error: the live demo needs the sounddevice package: pip install sounddevice "
              "(or run with --simulate FILE)", file=sys.stderr)
        return 2
    status_flags = []

    def callback(indata, outdata, frames, t, status):
        if status:
            status_flags.append(str(status))
        outdata[:, 0] = proc(indata[:, 0])

    with sd.Stream(samplerate=SAMPLE_RATE, blocksize=chunk, channels=1, dtype="float32",
                   device=(args.input, args.output), callback=callback, latency="low"):
        print(f"running for {args.seconds:g} s (Ctrl+C stops) ...")
        try:
            sd.sleep(int(1000 * args.seconds))
        except KeyboardInterrupt:
            pass
    print(proc.report(chunk))
    if status_flags:
        print(f"{len(status_flags)} audio under/overflows (the machine did not keep up): {status_flags[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
