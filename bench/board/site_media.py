"""The listening page's media: the utterances it plays, their clean reference (checked against the frozen
manifest, from the page's own copy when it matches, so CI needs no corpus), the spectrograms and the diagnostics
heatmap. Every file is a pure function of its input, written with no metadata (no software, no date,
matplotlib's default style and bundled font), so rendering twice gives the same bytes for ``--check``."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np

from bench import SAMPLE_RATE
from bench.core.audio import sha256_pcm16
from bench.core.errors import BenchError, DataError
from bench.core.files import CacheFolder
from bench.corpora.root import prepared_root, resolve_data_root
from bench.data.prepared import PreparedTrack
from bench.data.tracks import track_version
from bench.protocol import Protocol

SPEC_WIDTH, SPEC_HEIGHT = 320, 160
SPEC_NFFT, SPEC_HOP = 512, 128
DB_RANGE = (-95.0, -15.0)
LEVELS = 32
PICKS = ("lowest", "median", "highest")


def _digest(h, value) -> None:
    if isinstance(value, np.ndarray):
        h.update(f"{value.dtype.str}{value.shape}\0".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    else:
        h.update(json.dumps(value, sort_keys=True, allow_nan=True).encode() + b"\0")


class MediaCache:
    """The page's rendered images, by the SHA-256 of their inputs and of the code that renders them (this
    module's source and the numpy, Pillow and matplotlib versions): ``.cache/media-<code key>/<input
    key>.png``, so a check need not draw (nor import matplotlib) what it drew before from the same samples
    and numbers. A function of its key like the adapters' catalogue; ``bench leaderboard --no-cache``
    renders everything."""

    def __init__(self, root: Path | None = None):
        self.cache = CacheFolder("media", [__file__], ("numpy", "pillow", "matplotlib"), root)
        self.folder = self.cache.folder

    def __call__(self, make, *inputs) -> bytes:
        h = hashlib.sha256(make.__name__.encode() + b"\0")
        for value in inputs:
            _digest(h, value)
        name = f"{h.hexdigest()}.png"
        with contextlib.suppress(OSError):
            return (self.folder / name).read_bytes()
        out = make(*inputs)
        self.cache.write(name, out)
        return out


def drawn(make, *inputs) -> bytes:
    """No cache: draw every time."""
    return make(*inputs)


def choose_utterances(noisy_run) -> list[tuple[str, str, float]]:
    """[(which, utt_id, noisy PESQ-WB)] for `PICKS` (fewer when the set has fewer scored utterances)."""
    df = noisy_run.per_utterance
    if "pesq_wb" not in df.columns:
        return []
    scored = sorted((float(v), str(u)) for u, v in zip(df["utt_id"], df["pesq_wb"]) if not math.isnan(float(v)))
    if not scored:
        return []
    out = {}   # utt_id -> its first pick; the median of n sorted values is the one at index (n - 1) // 2
    for which, i in zip(PICKS, (0, (len(scored) - 1) // 2, len(scored) - 1)):
        out.setdefault(scored[i][1], (which, scored[i][1], scored[i][0]))
    return list(out.values())


def read_pcm16(path: Path) -> np.ndarray:
    import soundfile as sf

    q, sr = sf.read(str(path), dtype="int16", always_2d=True)
    if sr != SAMPLE_RATE or q.shape[1] != 1:
        raise BenchError(f"{path}: expected 16 kHz mono audio, found {sr} Hz, {q.shape[1]} channel(s)")
    return q[:, 0]


def flac_bytes(q: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(q, dtype=np.int16), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _pooled_db(q: np.ndarray) -> np.ndarray:
    """(SPEC_HEIGHT, SPEC_WIDTH) dB re full scale, row 0 = 0 Hz."""
    x = np.asarray(q, dtype=np.float64) / 32768.0
    n = SPEC_NFFT
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    x = np.pad(x, (n // 2, n // 2 + max(0, n - len(x))))
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::SPEC_HOP] * window
    power = np.abs(np.fft.rfft(frames, axis=1))[:, : n // 2] ** 2 / (window.sum() / 2) ** 2
    width = min(SPEC_WIDTH, power.shape[0])
    fb = np.linspace(0, n // 2, SPEC_HEIGHT + 1).round().astype(int)
    tb = np.linspace(0, power.shape[0], width + 1).round().astype(int)
    p = np.add.reduceat(power, fb[:-1], axis=1) / np.diff(fb)
    p = np.add.reduceat(p, tb[:-1], axis=0) / np.diff(tb)[:, None]
    if width < SPEC_WIDTH:  # a very short utterance: stretch its few frames
        p = p[np.floor(np.arange(SPEC_WIDTH) * width / SPEC_WIDTH).astype(int)]
    return 10 * np.log10(p.T + 1e-20)


def _palette() -> bytes:
    from matplotlib import colormaps

    rgb = colormaps["magma"](np.linspace(0, 1, LEVELS))[:, :3]
    return (rgb * 255).round().astype(np.uint8).tobytes()


def spectrogram_png(q: np.ndarray) -> bytes:
    from PIL import Image

    lo, hi = DB_RANGE
    level = np.round(np.clip((_pooled_db(q) - lo) / (hi - lo), 0, 1) * (LEVELS - 1)).astype(np.uint8)
    img = Image.fromarray(np.ascontiguousarray(level[::-1]), mode="P")
    img.putpalette(_palette())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _corpus_file(track, utt_id: str) -> Path | None:
    """The utterance's file in the corpus (useful as it is when the corpus is stored at 16 kHz), or None."""
    utt = next((u for u in track.utterances(split="test") if u.utt_id == utt_id), None)
    if utt is None or utt.sample_rate != 16000:
        return None
    try:
        return track.source_path(resolve_data_root(None, track), utt)
    except DataError:
        return None


def clean_samples(track_name: str, split_id: str, utt_id: str, page_copies) -> np.ndarray:
    """The clean test utterance of a benchmark track, checked against its frozen manifest: from one of the
    page copies (paths or None) or else the prepared track; a file is used only if its samples match."""
    track = track_version(track_name, split_id)
    want = {u.utt_id: u.sha256_pcm16 for u in track.utterances(split="test")}.get(utt_id)
    if want is None:
        raise BenchError(f"{utt_id} is no test utterance of {track_name} ({split_id})")
    prepared = PreparedTrack(track, Protocol.load(), prepared_root()).clean_path("test", utt_id)
    candidates = [p for p in (*page_copies, prepared, _corpus_file(track, utt_id))
                  if p is not None and Path(p).exists()]
    for p in candidates:
        q = read_pcm16(p)
        if sha256_pcm16(q) == want:
            return q
    raise BenchError(f"no clean audio of {track_name}/{utt_id} matching the frozen manifest "
                     f"(looked in: {', '.join(map(str, candidates)) or 'nothing found'})",
                     hint=f"run `bench data prepare --track {track_name}` (or set BENCH_PREPARED_DIR)")


def heatmap_png(systems: list[str], ops: list[str], delta: np.ndarray, noisy: list[float | None]) -> bytes:
    """Δ PESQ-WB (rows: systems, columns: manipulations; NaN = not scored); `noisy` = the noisy input's
    PESQ-WB per manipulation, shown under the column names."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(matplotlib.rcParamsDefault):
        matplotlib.rcParams["font.size"] = 8
        fig = Figure(figsize=(1.6 + 1.05 * len(ops), 1.0 + 0.32 * max(len(systems), 1)), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.3, 0.3, 0.65, 0.55))
        finite = delta[np.isfinite(delta)]
        vmax = max(0.1, float(np.abs(finite).max()) if finite.size else 0.1)
        ax.imshow(np.ma.masked_invalid(delta), cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
        for (i, j), v in np.ndenumerate(delta):
            ax.text(j, i, "–" if not np.isfinite(v) else f"{v:+.2f}", ha="center", va="center",
                    color="black" if not np.isfinite(v) or abs(v) < 0.6 * vmax else "white")
        ax.set_xticks(range(len(ops)), [f"{op}\n(noisy {'–' if n is None else f'{n:.2f}'})" for op, n in zip(ops, noisy)],
                      rotation=0)
        ax.set_yticks(range(len(systems)), systems)
        ax.set_title("Δ PESQ-WB over the noisy input, each manipulation alone")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.1, metadata={"Software": None})
    return buf.getvalue()
