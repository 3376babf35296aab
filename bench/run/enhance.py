"""`bench enhance`'s work: a model on your own audio files (user guide: docs/streaming.md). Offline, long
audio is enhanced in blocks with context on both sides, crossfaded, so memory is one block's whatever the
file's length."""

from __future__ import annotations

import errno
import tempfile
import wave
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bench import REPO_ROOT
from bench.adapters.base import build_model, discover, get_adapter
from bench.adapters.streaming import stream as run_stream
from bench.core.audio import SAMPLE_RATE, resample, to_pcm16
from bench.core.errors import AudioError, BenchError, ResultsError, os_error_message
from bench.core.files import atomic_path
from bench.scoring.results import RESULTS_DIR, find_run, load_run, weights_file
from bench.train.trainer import load_checkpoint, load_checkpoint_model
from bench.verify.evidence import model_of

BLOCK_SECONDS = 30.0     # offline: longer audio is enhanced in blocks of this length (16 kHz)
CONTEXT_SECONDS = 2.0    # input each block sees before and after itself
FADE_SECONDS = 0.05      # crossfade between neighbouring blocks, centred on their boundary


# what to run
def _checkpoint_path(value: str, base: Path) -> Path:
    p = Path(value)
    if not p.is_absolute():
        cands = [REPO_ROOT / p, base / p, Path.cwd() / p]
        p = next((c for c in cands if c.exists()), REPO_ROOT / p)
    return p


def _from_checkpoint(path: Path):
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
    try:
        r = load_run(run)
    except ResultsError as exc:
        raise BenchError(f"--run {run}: {exc}") from None
    results_root = run.resolve().parents[3] if len(run.resolve().parents) > 3 else RESULTS_DIR
    if r.summary["model"]["trainable"] and weights_file(r, results_root) is None:
        checkpoint = (r.summary.get("budget") or {}).get("checkpoint")
        path = _checkpoint_path(checkpoint, run) if checkpoint else None
        if path is None or not path.exists():
            raise BenchError(f"{run}: the run ships no weights and its checkpoint {checkpoint} is not here",
                             hint="weights larger than 10 MiB stay out of the repository; pass the .pt file with --run")
        adapter, model, _ = _from_checkpoint(path)
        return adapter, model, f"{r.model} ({run}, checkpoint {checkpoint})"
    found = get_adapter(r.model)
    return found.adapter, model_of(r, results_root, found), f"{r.model} ({run})"


def resolve_model(spec: str, results_dir: Path | None = None, track: str | None = None):
    """(adapter, model, description) for a run folder, MODEL@RUN_ID, checkpoint file or adapter name."""
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
        return a, build_model(a, a.resolved_config()), spec
    raise BenchError(f"--run {spec!r}: no such run folder, checkpoint file, MODEL@RUN_ID or adapter",
                     hint=f"adapters: {', '.join(sorted(adapters))}")


# audio
def _open(path: Path) -> sf.SoundFile:
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file does not exist")
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        f = sf.SoundFile(str(path))
    except Exception as exc:  # noqa: BLE001 - libsndfile errors name no file
        raise AudioError(path, f"cannot decode audio ({exc.__class__.__name__}: {exc})",
                         hint="not an audio file libsndfile reads (WAV, FLAC, OGG, ...)") from None
    if f.frames == 0:
        f.close()
        raise AudioError(path, "audio has no samples")
    return f


def _read(f: sf.SoundFile, path: Path, start: int, frames: int) -> np.ndarray:
    """``(channels, frames)`` float32 from `start`; `AudioError` on NaN/Inf or a decoding error."""
    try:
        f.seek(start)
        data = f.read(frames, dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile errors name no file
        raise AudioError(path, f"cannot decode audio ({exc.__class__.__name__}: {exc})") from None
    if not np.all(np.isfinite(data)):
        raise AudioError(path, "audio contains NaN or Inf samples")
    return np.ascontiguousarray(data.T)


def check_audio_file(path: Path) -> None:
    """`AudioError` naming the file unless libsndfile opens it and it has samples."""
    _open(path).close()


def read_channels(path: Path) -> tuple[np.ndarray, int]:
    """``(channels, frames)`` float32 and the sample rate; `AudioError` naming the file otherwise."""
    with _open(path) as f:
        return _read(f, Path(path), 0, f.frames), int(f.samplerate)


def enhance_file(adapter, model, src: Path, out: Path, *, block_seconds: float = BLOCK_SECONDS,
                 context_seconds: float = CONTEXT_SECONDS, device: str = "cpu") -> tuple[int, int, int, float]:
    """Offline enhancement of `src` of any length in bounded memory, written to `out` (16-bit WAV): each
    window of `_blockwise` is read at the file's own rate and enhanced by `enhance_array` (bit-identical at
    16 kHz to `enhance_blocks`). Returns ``(channels, sample rate, frames, peak)``."""
    src = Path(src)
    with _open(src) as f, atomic_path(out) as tmp:
        sr, ch, n = int(f.samplerate), f.channels, f.frames
        block, context = int(round(block_seconds * sr)), int(round(context_seconds * sr))
        if block <= 0 or n <= block + 2 * context:
            block = n
        peak = 0.0
        # Python's wave module writes with plain file I/O, so a full disk is an OSError naming the file
        # (libsndfile reports only "System error")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(ch)
            w.setsampwidth(2)
            w.setframerate(sr)
            for done in _blockwise(lambda a, b: enhance_array(adapter, model, _read(f, src, a, b - a), sr,
                                                              device=device, block_seconds=0),
                                   (ch,), n, block, context, int(round(FADE_SECONDS * sr)) // 2):
                peak = max(peak, float(np.max(np.abs(done))) if done.size else 0.0)
                w.writeframes(np.ascontiguousarray(to_pcm16(done).T).astype("<i2").tobytes())
    return ch, sr, n, peak


def _crossfade(s: int, e: int, n: int, half: int) -> tuple[int, int, np.ndarray]:
    """(lo, hi, weights): where block ``[s, e)`` of `n` samples lands, faded over ``2 * half`` samples
    centred on each inner boundary (the weights of two neighbours sum to 1)."""
    lo, hi = (max(0, s - half) if s > 0 else 0), (min(n, e + half) if e < n else n)
    w = np.ones(hi - lo)
    if s > 0 and half:       # fade in over [s - half, s + half)
        t = np.arange(lo, min(hi, s + half))
        w[: len(t)] = (t - (s - half) + 0.5) / (2 * half)
    if e < n and half:       # fade out over [e - half, e + half)
        t = np.arange(max(lo, e - half), hi)
        w[len(w) - len(t):] *= 1.0 - (t - (e - half) + 0.5) / (2 * half)
    return lo, hi, w


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
    return np.concatenate(list(_blockwise(lambda a, b: run(x[..., a:b]), x.shape[:-1], n, block, context, fade // 2)),
                          axis=-1)


def _blockwise(run, lead: tuple, n: int, block: int, context: int, half: int):
    """The output of `run(a, b)` (the enhanced input samples ``[a, b)``, shape ``(*lead, b - a)``) over ``n``
    samples, block by block as in `enhance_blocks`: yields float32 pieces in order, each as soon as it is final."""
    pending, start = np.zeros((*lead, 0)), 0
    for s in range(0, n, block):
        e, a = min(n, s + block), max(0, s - context)
        b = min(n, e + context)
        y = np.asarray(run(a, b), dtype=np.float64)
        lo, hi, wt = _crossfade(s, e, n, half)
        if pending.shape[-1] < hi - start:
            pending = np.pad(pending, [(0, 0)] * len(lead) + [(0, hi - start - pending.shape[-1])])
        pending[..., lo - start:hi - start] += wt * y[..., lo - a:hi - a]
        final = e - half if e < n else n   # at most `start` while blocks are shorter than half the fade
        if final > start:
            yield pending[..., : final - start].astype(np.float32)
            pending, start = pending[..., final - start:], final


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def enhance_array(adapter, model, x: np.ndarray, sr: int, *, stream: bool = False, chunk: int | None = None,
                  device: str = "cpu", block_seconds: float = BLOCK_SECONDS,
                  context_seconds: float = CONTEXT_SECONDS) -> np.ndarray:
    """Enhance ``(channels, frames)`` audio at rate `sr`; returns the same shape (float32). Offline, audio
    longer than `block_seconds` (0: never) is enhanced in blocks (`enhance_blocks`)."""
    x16 = np.stack([resample(ch, sr, SAMPLE_RATE) for ch in x])
    if stream:
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


def check_output_dir(out_dir: Path, *, create: bool = True) -> Path:
    """Create `out_dir` if needed and make sure a file can be written in it; a `BenchError` naming the
    folder and the reason otherwise. ``create=False`` creates nothing: the test file goes to the nearest
    existing folder (checked before the model is resolved, created after)."""
    probe = out_dir
    while not create and not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        if create:
            out_dir.mkdir(parents=True, exist_ok=True)
        elif not probe.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(probe))
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".bench-write-test-"):
            pass
    except OSError as exc:
        err = os_error_message(exc)
        raise BenchError(f"-o {out_dir}: cannot write the output folder ({err.message})", hint=err.hint) from None
    return out_dir
