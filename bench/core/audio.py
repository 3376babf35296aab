"""Audio I/O for the whole benchmark: read, check, resample, quantize, write, through `soundfile`
(libsndfile) and the pinned `RESAMPLER`. Every problem with a file raises `AudioError` naming the file."""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from bench import SAMPLE_RATE
from bench.core.errors import AudioError
from bench.core.files import atomic_write_bytes

log = logging.getLogger(__name__)

#: The one resampler of the benchmark (torchaudio's windowed-sinc, Kaiser window,
#: the parameters librosa calls "kaiser_best"). Changing it changes every track.
RESAMPLER = {
    "implementation": "torchaudio.functional.resample",
    "resampling_method": "sinc_interp_kaiser",
    "lowpass_filter_width": 64,
    "rolloff": 0.9475937167399596,
    "beta": 14.769656459379492,
}

#: Below this RMS (dBFS) a file is treated as silent.
SILENCE_DBFS = -70.0
#: A sample at or above this magnitude counts as clipped (int16 full scale is 32767/32768).
CLIP_LEVEL = 32766 / 32768
#: More than this fraction of clipped samples makes a file "clipped".
CLIP_FRACTION = 1e-3


def read_audio(path: str | Path, *, mono: str = "downmix") -> tuple[np.ndarray, int]:
    """(float32 mono samples in [-1, 1], sample rate); `mono="downmix"` averages channels (logged), "error"
    refuses them."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file does not exist")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports corrupt/unknown formats as RuntimeError/LibsndfileError
        raise AudioError(path, f"cannot decode audio ({exc.__class__.__name__}: {exc})",
                         hint="re-download or re-extract the file; it is corrupt or not an audio file") from None
    if data.shape[0] == 0:
        raise AudioError(path, "audio has no samples")
    if data.shape[1] > 1:
        if mono == "error":
            raise AudioError(path, f"expected mono audio, got {data.shape[1]} channels")
        log.warning("%s: %d channels, down-mixed to mono by averaging", path, data.shape[1])
        data = data.mean(axis=1, keepdims=True)
    x = np.ascontiguousarray(data[:, 0], dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise AudioError(path, "audio contains NaN or Inf samples")
    return x, int(sr)


def check_speech(x: np.ndarray, path: str | Path, *, allow_clipping: bool = False) -> None:
    """Refuse audio that cannot serve as clean speech: silent or clipped."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    level = 20 * np.log10(rms) if rms > 0 else -np.inf
    if level < SILENCE_DBFS:
        raise AudioError(path, f"audio is silent (RMS {level:.1f} dBFS < {SILENCE_DBFS:.0f} dBFS)")
    frac = float(np.mean(np.abs(x) >= CLIP_LEVEL)) if x.size else 0.0
    if frac > CLIP_FRACTION:
        msg = f"audio is clipped ({100 * frac:.2f}% of samples at full scale)"
        if not allow_clipping:
            raise AudioError(path, msg, hint="a clipped recording cannot be a clean reference")
        log.warning("%s: %s; kept (allowed for this split)", path, msg)


def resample(x: np.ndarray, orig_sr: int, new_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample with the benchmark's pinned resampler (float64 inside, float32 out)."""
    if orig_sr == new_sr:
        return x.astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF

    params = {k: v for k, v in RESAMPLER.items() if k != "implementation"}
    y = AF.resample(torch.from_numpy(x.astype(np.float64)), orig_sr, new_sr, **params)
    return y.numpy().astype(np.float32)


def load_16k(path: str | Path, **kwargs) -> np.ndarray:
    """Read a file, down-mix, and resample to 16 kHz."""
    x, sr = read_audio(path, **kwargs)
    return resample(x, sr, SAMPLE_RATE)


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """Quantize float audio to int16 (round to nearest, clip to the int16 range)."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def from_pcm16(q: np.ndarray) -> np.ndarray:
    return (q.astype(np.float32) / 32768.0).astype(np.float32)


def sha256_pcm16(q: np.ndarray) -> str:
    """SHA-256 of int16 samples (little-endian): identifies audio independent of its container."""
    return hashlib.sha256(np.ascontiguousarray(q, dtype="<i2").tobytes()).hexdigest()


def file_sha256_pcm16(path: str | Path) -> str:
    """SHA-256 of a file's decoded int16 samples (first channel after down-mix)."""
    path = Path(path)
    try:
        data, _ = sf.read(str(path), dtype="int16", always_2d=True)
    except Exception as exc:
        raise AudioError(path, f"cannot decode audio ({exc.__class__.__name__}: {exc})") from None
    if data.shape[1] > 1:
        data = np.round(data.astype(np.float64).mean(axis=1)).astype(np.int16)[:, None]
    return sha256_pcm16(data[:, 0])


def write_wav_pcm16(path: str | Path, x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Atomically write 16-bit PCM (WAV, or FLAC for ``.flac``); returns the int16 samples written. Encoded in
    memory and written by plain file I/O, so an error names the file and the reason (libsndfile says "System
    error")."""
    path = Path(path)
    q = x if np.asarray(x).dtype == np.int16 else to_pcm16(x)
    buf = io.BytesIO()
    sf.write(buf, q, sr, subtype="PCM_16", format="FLAC" if path.suffix.lower() == ".flac" else "WAV")
    atomic_write_bytes(path, buf.getvalue(), fsync=False)
    return q
