"""`bench enhance --run RUN_OR_CHECKPOINT IN... -o OUT_DIR`: run a model on your own audio files
(bench/run/enhance.py; user guide: docs/streaming.md). A file that fails is reported by name and skipped
(exit status 1); the output folder is checked before the model is loaded."""

from __future__ import annotations

from pathlib import Path

from bench.cli.args import command, print_error
from bench.core.errors import BenchError


def _blocks(args) -> tuple[float, float]:
    """The checked ``--block-seconds`` and ``--context-seconds`` (their defaults: bench/run/enhance.py)."""
    from bench.run.enhance import BLOCK_SECONDS, CONTEXT_SECONDS, FADE_SECONDS

    block = BLOCK_SECONDS if args.block_seconds is None else args.block_seconds
    context = CONTEXT_SECONDS if args.context_seconds is None else args.context_seconds
    if args.chunk is not None and not args.stream:
        raise BenchError("--chunk only applies with --stream")
    if args.chunk is not None and args.chunk < 1:
        raise BenchError("--chunk must be a positive number of samples")
    if not (block == 0 or 1.0 <= block <= 3600):
        raise BenchError(f"--block-seconds {block}: must be 0 (whole file) or in [1, 3600] seconds")
    if not (FADE_SECONDS / 2 <= context <= 60):
        raise BenchError(f"--context-seconds {context}: must be in [{FADE_SECONDS / 2}, 60] seconds")
    return block, context


def _mode(adapter, model, args, block: float) -> str:
    """How the files are enhanced, in words; refuses ``--stream`` for a model that cannot stream."""
    if not args.stream:
        return "offline" if block == 0 else f"offline, blocks of {block:g} s"
    if not adapter.causal:
        raise BenchError(f"--stream: {adapter.name} is not causal; it can only run offline (drop --stream)")
    if (s := adapter.streamer(model)) is None:
        raise BenchError(f"--stream: {adapter.name} has no streaming implementation (Adapter.streamer)",
                         hint="drop --stream to enhance offline")
    return (f"streaming, chunks of {args.chunk or s.hop} samples, delay {s.delay} samples "
            f"({s.latency_ms:.2f} ms, compensated)")


def _out_path(out_dir: Path, src: Path, used: set[Path]) -> Path:
    """``OUT_DIR/<stem>.wav``, numbered where two inputs share a stem."""
    out, k = out_dir / f"{src.stem}.wav", 2
    while out in used:
        out, k = out_dir / f"{src.stem}-{k}.wav", k + 1
    used.add(out)
    return out


def _enhance_file(src: Path, out_dir: Path, used: set[Path], adapter, model, args, device: str,
                  blocks: tuple[float, float]) -> str:
    """Enhance one file into `out_dir`; returns the line that reports it."""
    import numpy as np
    from rich.markup import escape

    from bench.core.audio import write_wav_pcm16
    from bench.core.errors import AudioError
    from bench.run.enhance import check_audio_file, enhance_array, enhance_file, read_channels

    check_audio_file(src)
    out = _out_path(out_dir, src, used)   # named once the file is known to be audio
    if out.resolve() == src.resolve():
        raise AudioError(src, "the output would overwrite the input", hint="choose another -o folder")
    if not args.stream and blocks[0] > 0:   # offline in blocks: read and written block by block
        ch, sr, n, peak = enhance_file(adapter, model, src, out, block_seconds=blocks[0], context_seconds=blocks[1],
                                       device=device)
    else:   # the whole file in memory (--stream, or --block-seconds 0)
        x, sr = read_channels(src)
        y = enhance_array(adapter, model, x, sr, stream=args.stream, chunk=args.chunk, device=device,
                          block_seconds=blocks[0], context_seconds=blocks[1])
        ch, n, peak = x.shape[0], x.shape[1], float(np.max(np.abs(y))) if y.size else 0.0
        write_wav_pcm16(out, y.T, sr)
    note = f" (peak {peak:.2f} > 1: clipped to 16 bits)" if peak > 1.0 else ""
    return f"[green]ok[/] {escape(str(src))} -> {escape(str(out))} ({ch} ch, {sr} Hz, {n} samples){note}"


def cmd_enhance(args) -> int:
    import torch
    from rich.markup import escape

    from bench.core.console import console, err_console, progress_bar
    from bench.core.errors import os_error_message
    from bench.run.enhance import check_output_dir, resolve_model
    from bench.run.pipeline import resolve_device

    if empty := [i for i, name in enumerate(args.inputs, 1) if not name.strip()]:
        raise BenchError(f"IN: input {empty[0]} is an empty path, not an audio file")
    blocks = _blocks(args)
    device = resolve_device(args.device)
    check_output_dir(Path(args.output), create=False)   # before the model is loaded; nothing made yet
    made = not Path(args.output).exists()
    adapter, model, desc = resolve_model(args.run, Path(args.results_dir) if args.results_dir else None, args.track)
    out_dir = check_output_dir(Path(args.output))
    model = model.to(device).eval()
    mode = _mode(adapter, model, args, blocks[0])
    console.print(f"enhancing {len(args.inputs)} file(s) with {desc} ({mode}) on {device} -> {out_dir}", markup=False)
    failed, used = [], set()
    with progress_bar() as prog:
        task = prog.add_task("enhance", total=len(args.inputs))
        for name in args.inputs:
            src = Path(name)
            prog.update(task, description=f"enhance {src.name}")
            try:
                prog.console.print(_enhance_file(src, out_dir, used, adapter, model, args, device, blocks))
            except (BenchError, OSError, RuntimeError, ValueError, torch.cuda.OutOfMemoryError) as exc:
                failed.append(src)   # an OSError: the output could not be written (the path and the reason)
                print_error(exc if isinstance(exc, BenchError) else os_error_message(exc) if isinstance(exc, OSError)
                            else f"{src}: enhancing failed ({exc.__class__.__name__}: {exc})")
            prog.advance(task)
    if failed:
        err_console.print(f"[red]{len(failed)} of {len(args.inputs)} file(s) failed[/]: "
                          + escape(", ".join(map(str, failed))))
    if made and len(failed) == len(args.inputs) and not any(out_dir.iterdir()):
        out_dir.rmdir()   # made for this command and left empty: not left behind
        console.print(f"no file written; {out_dir} removed", markup=False)
        return 1
    console.print(f"{len(args.inputs) - len(failed)} file(s) written to {out_dir}", markup=False)
    return 1 if failed else 0


def register(subparsers) -> None:
    p = command(
        subparsers, "enhance", cmd_enhance,
        help="enhance your own audio files with a trained run, a checkpoint or a training-free adapter",
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
    # the defaults are bench/run/enhance.py's BLOCK_SECONDS and CONTEXT_SECONDS, read when the command runs
    # (importing it here would load numpy for `bench --help`); the help repeats them
    p.add_argument("--block-seconds", type=float, default=None, metavar="S",
                   help="offline: enhance longer audio in blocks of S seconds with bounded memory (default "
                        "30; 0: the whole file at once)")
    p.add_argument("--context-seconds", type=float, default=None, metavar="S",
                   help="offline blocks: input seen before and after each block (default 2)")
    p.add_argument("--device", default="cpu", help="cpu (default) | cuda | cuda:N | auto")
    p.add_argument("--results-dir", default=None, help="where MODEL@RUN_ID is looked up (default: <repo>/results)")
    p.add_argument("--track", default=None, help="track of MODEL@RUN_ID when several have that run id")
