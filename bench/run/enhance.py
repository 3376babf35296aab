"""`bench enhance --run RUN_OR_CHECKPOINT IN.wav [...] -o OUT_DIR [--stream] [--chunk N]`: run a model on
your own audio files (user guide: docs/streaming.md).

RUN_OR_CHECKPOINT is a results run folder (the model of its ``summary.json`` with the weights of
``budget.checkpoint``, or the ``model_config`` of its ``config.json`` for training-free models),
``MODEL@RUN_ID`` (found under ``--results-dir``), a checkpoint file (it names its adapter and config)
or the name of a training-free adapter. Each channel is enhanced on its own, at 16 kHz through the
pinned resampler and back, cut to the input's length; the output is 16-bit WAV at the input's rate.
An unreadable file is reported by name and skipped (exit status 1). ``--stream`` pushes the audio
through the adapter's `Streamer` in chunks (default: its hop), delay compensated.

The output folder is checked (created, written to) before the model is loaded. Offline, audio longer
than ``--block-seconds`` (default 30 s at 16 kHz) is enhanced in blocks, each with ``--context-seconds``
of input on both sides and crossfaded with its neighbour over `FADE_SECONDS` (`enhance_blocks`): the
model's memory is that of one block whatever the file's length; for a model whose receptive field is
at most the context minus half the fade, the output equals the whole-file output to float precision.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from bench import REPO_ROOT
from bench.core.audio import SAMPLE_RATE, resample, write_wav_pcm16
from bench.core.errors import AudioError, BenchError, os_error_message

log = logging.getLogger(__name__)

BLOCK_SECONDS = 30.0     # offline: longer audio is enhanced in blocks of this length (16 kHz)
CONTEXT_SECONDS = 2.0    # input each block sees before and after itself
FADE_SECONDS = 0.05      # crossfade between neighbouring blocks, centred on their boundary


# ---------------------------------------------------------------------------------------------
# what to run
def _checkpoint_path(value: str, base: Path) -> Path:
    p = Path(value)
    if not p.is_absolute():
        cands = [REPO_ROOT / p, base / p, Path.cwd() / p]
        p = next((c for c in cands if c.exists()), REPO_ROOT / p)
    return p


def _from_checkpoint(path: Path):
    from bench.adapters.base import get_adapter
    from bench.train.trainer import load_checkpoint, load_checkpoint_model

    ck = load_checkpoint(path)
    if not isinstance(ck, dict) or "adapter" not in ck or "model_config" not in ck:
        raise BenchError(f"{path}: not a benchmark checkpoint (no 'adapter' / 'model_config')",
                         hint="checkpoints are written by `bench run` to runs/<track>/<model>/<run-id>/best.pt")
    found = get_adapter(ck["adapter"])
    model, _, _ = load_checkpoint_model(found.adapter, path)
    return found.adapter, model, f"{found.adapter.name} ({path})"


def _from_run_dir(run: Path):
    """A results folder: the model built from its config.json, with the weights the run ships
    (``weights.safetensors`` of its home folder); older runs without shipped weights: their checkpoint."""
    from bench.core.errors import ResultsError
    from bench.verify.evidence import model_of, weights_path
    from bench.scoring.results import RESULTS_DIR, load_run

    try:
        r = load_run(run)
    except ResultsError as exc:
        raise BenchError(f"--run {run}: {exc}") from None
    name = r.model
    results_root = run.resolve().parents[3] if len(run.resolve().parents) > 3 else RESULTS_DIR
    if r.summary["model"]["trainable"] and weights_path(r, results_root) is None:
        checkpoint = (r.summary.get("budget") or {}).get("checkpoint")
        path = _checkpoint_path(checkpoint, run) if checkpoint else None
        if path is None or not path.exists():
            raise BenchError(f"{run}: the run ships no weights and its checkpoint {checkpoint} is not here",
                             hint="weights larger than 10 MiB stay out of the repository; pass the .pt file with --run")
        adapter, model, _ = _from_checkpoint(path)
        return adapter, model, f"{name} ({run}, checkpoint {checkpoint})"
    from bench.adapters.base import get_adapter

    found = get_adapter(name)
    model = model_of(r, results_root, found)
    return found.adapter, model, f"{name} ({run})"


def resolve_model(spec: str, results_dir: Path | None = None, track: str | None = None):
    """(adapter, model, description) for a run folder, MODEL@RUN_ID, checkpoint file or adapter name."""
    from bench.adapters.base import discover
    from bench.scoring.results import find_run

    p = Path(spec)
    if p.is_dir():
        if not (p / "summary.json").exists():
            raise BenchError(f"{p}: not a results run folder (no summary.json)")
        return _from_run_dir(p)
    if p.is_file():
        return _from_checkpoint(p)
    if "@" in spec:
        return _from_run_dir(find_run(spec, track, results_dir))
    adapters = discover()
    if spec in adapters:
        a = adapters[spec].adapter
        if a.oracle:
            raise BenchError(f"{spec} is an oracle: it needs the clean reference, which your files do not have")
        if a.trainable:
            raise BenchError(f"{spec} must be trained first: give its run (a results folder or {spec}@RUN_ID) "
                             "or a checkpoint file", hint=f"`bench run --model {spec}` trains and scores it")
        return a, a.build(**a.resolved_config()), spec
    raise BenchError(f"--run {spec!r}: no such run folder, checkpoint file, MODEL@RUN_ID or adapter",
                     hint=f"adapters: {', '.join(sorted(adapters))}")


# ---------------------------------------------------------------------------------------------
# audio
def read_channels(path: Path) -> tuple[np.ndarray, int]:
    """``(channels, frames)`` float32 and the sample rate; `AudioError` naming the file otherwise."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file does not exist")
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile errors name no file
        raise AudioError(path, f"cannot decode audio ({exc.__class__.__name__}: {exc})",
                         hint="not an audio file libsndfile reads (WAV, FLAC, OGG, ...)") from None
    if data.shape[0] == 0:
        raise AudioError(path, "audio has no samples")
    if not np.all(np.isfinite(data)):
        raise AudioError(path, "audio contains NaN or Inf samples")
    return np.ascontiguousarray(data.T), int(sr)


def enhance_blocks(run, x: np.ndarray, block: int, context: int, fade: int = 0) -> np.ndarray:
    """``run`` (``(channels, n)`` float32 -> same shape) applied to `x` block by block: block ``k`` covers
    ``[k*block, (k+1)*block)``, is computed from the input extended by `context` samples on each side, and
    is crossfaded linearly with its neighbours over `fade` samples centred on each boundary (the weights
    sum to 1). The model only ever sees ``block + 2*context`` samples. ``context >= receptive field +
    fade/2`` makes the result equal to ``run(x)`` for a model with a finite receptive field."""
    n = x.shape[-1]
    if block <= 0 or n <= block + 2 * context:
        return run(x)
    if context < (fade + 1) // 2:
        raise BenchError(f"a crossfade of {fade} samples needs a context of at least {(fade + 1) // 2} samples")
    half = fade // 2
    out = np.zeros(x.shape, dtype=np.float64)
    starts = range(0, n, block)
    for s in starts:
        e = min(n, s + block)
        a, b = max(0, s - context), min(n, e + context)
        y = np.asarray(run(x[..., a:b]), dtype=np.float64)
        lo, hi = (max(0, s - half) if s > 0 else 0), (min(n, e + half) if e < n else n)
        w = np.ones(hi - lo)
        if s > 0 and half:       # fade in over [s - half, s + half)
            t = np.arange(lo, min(hi, s + half))
            w[: len(t)] = (t - (s - half) + 0.5) / (2 * half)
        if e < n and half:       # fade out over [e - half, e + half)
            t = np.arange(max(lo, e - half), hi)
            w[len(w) - len(t):] *= 1.0 - (t - (e - half) + 0.5) / (2 * half)
        out[..., lo:hi] += w * y[..., lo - a:hi - a]
    return out.astype(np.float32)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def enhance_array(adapter, model, x: np.ndarray, sr: int, *, stream: bool = False, chunk: int | None = None,
                  device: str = "cpu", block_seconds: float = BLOCK_SECONDS,
                  context_seconds: float = CONTEXT_SECONDS) -> np.ndarray:
    """Enhance ``(channels, frames)`` audio at rate `sr`; returns the same shape (float32). Offline, audio
    longer than `block_seconds` (0: never) is enhanced in blocks (`enhance_blocks`)."""
    import torch

    x16 = np.stack([resample(ch, sr, SAMPLE_RATE) for ch in x])
    if stream:
        from bench.adapters.streaming import stream as run_stream

        streamer = adapter.streamer(model)
        t = torch.from_numpy(np.ascontiguousarray(x16, dtype=np.float32))
        y16 = run_stream(streamer, t.to(device), chunk or streamer.hop).detach().float().cpu().numpy()
    else:
        def run(part: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32)).to(device)
            with torch.inference_mode():
                return adapter.enhance(model, t).detach().float().cpu().numpy().reshape(part.shape)

        y16 = enhance_blocks(run, x16, int(round(block_seconds * SAMPLE_RATE)),
                             int(round(context_seconds * SAMPLE_RATE)), int(round(FADE_SECONDS * SAMPLE_RATE)))
    y16 = y16.reshape(x16.shape)
    return np.stack([_fit(resample(ch, SAMPLE_RATE, sr), x.shape[1]) for ch in y16]).astype(np.float32)


def check_output_dir(out_dir: Path) -> Path:
    """Create `out_dir` if needed and make sure a file can be written in it; a `BenchError` naming the
    folder and the reason otherwise."""
    import tempfile

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".bench-write-test-"):
            pass
    except OSError as exc:
        err = os_error_message(exc)
        raise BenchError(f"-o {out_dir}: cannot write the output folder ({err.message})", hint=err.hint) from None
    return out_dir


def _out_path(out_dir: Path, src: Path, used: set[Path]) -> Path:
    out = out_dir / f"{src.stem}.wav"
    k = 2
    while out in used:
        out = out_dir / f"{src.stem}-{k}.wav"
        k += 1
    used.add(out)
    return out


# ---------------------------------------------------------------------------------------------
def cmd_enhance(args) -> int:
    import torch

    from rich.markup import escape

    from bench.core.console import console, err_console, progress_bar
    from bench.run.pipeline import resolve_device

    if args.chunk is not None and not args.stream:
        raise BenchError("--chunk only applies with --stream")
    if args.chunk is not None and args.chunk < 1:
        raise BenchError("--chunk must be a positive number of samples")
    if not (args.block_seconds == 0 or 1.0 <= args.block_seconds <= 3600):
        raise BenchError(f"--block-seconds {args.block_seconds}: must be 0 (whole file) or in [1, 3600] seconds")
    if not (FADE_SECONDS / 2 <= args.context_seconds <= 60):
        raise BenchError(f"--context-seconds {args.context_seconds}: must be in [{FADE_SECONDS / 2}, 60] seconds")
    device = resolve_device(args.device)
    out_dir = check_output_dir(Path(args.output))   # before the model is loaded and run
    adapter, model, desc = resolve_model(args.run, Path(args.results_dir) if args.results_dir else None, args.track)
    model = model.to(device).eval()
    if args.stream:
        if not adapter.causal:
            raise BenchError(f"--stream: {adapter.name} is not causal; it can only run offline (drop --stream)")
        if adapter.streamer(model) is None:
            raise BenchError(f"--stream: {adapter.name} has no streaming implementation (Adapter.streamer)",
                             hint="drop --stream to enhance offline")
    mode = "offline" if args.block_seconds == 0 else f"offline, blocks of {args.block_seconds:g} s"
    if args.stream:
        s = adapter.streamer(model)
        mode = (f"streaming, chunks of {args.chunk or s.hop} samples, delay {s.delay} samples "
                f"({s.latency_ms:.2f} ms, compensated)")
    console.print(f"enhancing {len(args.inputs)} file(s) with {desc} ({mode}) on {device} -> {out_dir}", markup=False)

    failed, used = [], set()
    with progress_bar() as prog:
        task = prog.add_task("enhance", total=len(args.inputs))
        for name in args.inputs:
            src = Path(name)
            prog.update(task, description=f"enhance {src.name}")
            try:
                x, sr = read_channels(src)
                out = _out_path(out_dir, src, used)
                if out.resolve() == src.resolve():
                    raise AudioError(src, "the output would overwrite the input", hint="choose another -o folder")
                y = enhance_array(adapter, model, x, sr, stream=args.stream, chunk=args.chunk, device=device,
                                  block_seconds=args.block_seconds, context_seconds=args.context_seconds)
                peak = float(np.max(np.abs(y))) if y.size else 0.0
                write_wav_pcm16(out, y.T, sr)
                note = f" (peak {peak:.2f} > 1: clipped to 16 bits)" if peak > 1.0 else ""
                prog.console.print(f"[green]ok[/] {escape(str(src))} -> {escape(str(out))} "
                                   f"({x.shape[0]} ch, {sr} Hz, {x.shape[1]} samples){note}")
            except BenchError as exc:
                failed.append(src)
                err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
            except OSError as exc:   # the output could not be written: the path and the reason
                failed.append(src)
                err_console.print(f"[bold red]error:[/] {escape(str(os_error_message(exc)))}")
            except (RuntimeError, ValueError, torch.cuda.OutOfMemoryError) as exc:
                failed.append(src)
                err_console.print(f"[bold red]error:[/] {escape(str(src))}: enhancing failed "
                                  f"({exc.__class__.__name__}: {escape(str(exc))})")
            prog.advance(task)
    done = len(args.inputs) - len(failed)
    if failed:
        err_console.print(f"[red]{len(failed)} of {len(args.inputs)} file(s) failed[/]: "
                          + escape(", ".join(map(str, failed))))
    console.print(f"{done} file(s) written to {out_dir}", markup=False)
    return 1 if failed else 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "enhance", help="enhance your own audio files with a trained run, a checkpoint or a training-free adapter",
        description="Enhance audio files. Any sample rate and channel count: each channel is processed "
                    "independently (no down-mix), resampled to 16 kHz and back; the output is 16-bit WAV "
                    "with the input's sample rate, channel count and length, named OUT_DIR/<stem>.wav. "
                    "Unreadable files are reported and skipped (exit status 1).")
    p.add_argument("--run", required=True, metavar="RUN_OR_CHECKPOINT",
                   help="results run folder, MODEL@RUN_ID, checkpoint .pt file, or a training-free adapter name")
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files (WAV, FLAC, ... any rate, any channels)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder (created if needed)")
    p.add_argument("--stream", action="store_true",
                   help="run the causal model's streaming wrapper chunk by chunk, as a live device would")
    p.add_argument("--chunk", type=int, default=None, metavar="N",
                   help="streaming chunk size in 16 kHz samples (default: the model's hop)")
    p.add_argument("--block-seconds", type=float, default=BLOCK_SECONDS, metavar="S",
                   help=f"offline: enhance longer audio in blocks of S seconds with bounded memory (default "
                        f"{BLOCK_SECONDS:g}; 0: the whole file at once)")
    p.add_argument("--context-seconds", type=float, default=CONTEXT_SECONDS, metavar="S",
                   help=f"offline blocks: input seen before and after each block (default {CONTEXT_SECONDS:g})")
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda | cuda:N | auto")
    p.add_argument("--results-dir", default=None, help="where MODEL@RUN_ID is looked up (default: <repo>/results)")
    p.add_argument("--track", default=None, help="track of MODEL@RUN_ID when several have that run id")
    p.set_defaults(func=cmd_enhance)
