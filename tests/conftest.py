"""Shared fixtures for the tests of the benchmark definition (protocol + data layer).

- ``shared_data`` / ``vctk_mini``: the real speech beside the repository
  (``Path(bench.REPO_ROOT).parent / "shared" / "data"``, overridden by ``BENCH_DATA_ROOT``);
  tests that need it are skipped, with the reason, where it is absent, except under CI
  (``CI=true``, as .ci/run sets it), where missing shared data fails them (`missing_shared`): a CI
  run cannot go green by silently skipping the real-speech tests.
- ``make_vctk``: writes a tiny synthetic corpus in a real VCTK layout (0.92 FLAC mic1/mic2, or 0.80 WAV)
  at 48 kHz, made of short speech-like signals (a harmonic voice with a syllable envelope, a little noise).
- ``make_track``: a custom, unfrozen `bench.data.tracks.Track` over such a corpus;
  `make_tiny_prepared` prepares one (train p225, valid p226, test p227) for training tests.
- `committed` / `copy_run` / `edit_summary`: the committed vctk-mini runs, and copies of them with
  consistent or deliberately edited summaries, for the results / leaderboard / compare tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import bench
from bench.data.tracks import Track

ENV_DATA_ROOT = "BENCH_DATA_ROOT"


def shared_data_root() -> Path:
    """The shared data folder: $BENCH_DATA_ROOT, else ../shared/data beside the repository."""
    env = os.environ.get(ENV_DATA_ROOT)
    return Path(env).expanduser() if env else Path(bench.REPO_ROOT).parent / "shared" / "data"


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_shared(reason: str) -> None:
    """Skip a test whose shared real-speech data is missing; under CI (``CI=true``) fail it instead."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: the shared real-speech data is required, not skipped)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_root()
    if not root.is_dir():
        missing_shared(f"shared real-speech data not found at {root} "
                       f"(set {ENV_DATA_ROOT} to the folder holding vctk-mini/)")
    return root


@pytest.fixture(scope="session")
def vctk_mini(shared_data) -> Path:
    """The real vctk-mini corpus folder (VCTK 0.80 layout)."""
    corpus = shared_data / "vctk-mini"
    if not (corpus / "wav48").is_dir():
        missing_shared(f"real vctk-mini corpus not found at {corpus}")
    return corpus


# ---------------------------------------------------------------------------------------------
# synthetic speech-like audio
def speech_like(n: int, sr: int, seed: int, *, peak: float = 0.5) -> np.ndarray:
    """A deterministic speech-like float64 signal: a voiced harmonic series (f0 ~ 90-220 Hz with
    vibrato, -6 dB/octave-ish harmonics up to ~4 kHz) under a syllable-rate (3-6 Hz) envelope,
    plus a little breath noise; scaled to `peak`."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f0 = rng.uniform(90, 220) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = np.zeros(n)
    for k in range(1, int(4000 / 220) + 1):
        voiced += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k
    syl = rng.uniform(3, 6)
    env = np.clip(np.sin(2 * np.pi * syl * t + rng.uniform(0, np.pi)), 0, None) ** 1.5
    env = 0.15 + 0.85 * env
    x = voiced * env + 0.02 * rng.standard_normal(n)
    return peak * x / np.max(np.abs(x))


def _seed_of(*parts) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


def write_audio(path: Path, x: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "FLAC" if path.suffix == ".flac" else "WAV"
    sf.write(str(path), x, sr, subtype=subtype, format=fmt)
    return path


def make_vctk_corpus(root: Path, layout: str = "0.92", speakers=("p225", "p226"), n_utts: int = 2,
                     sr: int = 48000, *, duration: float = 0.4, mic2: bool = True, ext: str | None = None,
                     start: int = 1) -> Path:
    """Write a tiny VCTK corpus under `root` and return `root`.

    0.92: ``wav48_silence_trimmed/<spk>/<spk>_<nnn>_mic1.flac`` (+ ``_mic2.flac`` with different content
    when `mic2`); 0.80: ``wav48/<spk>/<spk>_<nnn>.wav`` (or `ext`). Utterances are numbered from `start`.
    """
    root = Path(root)
    n = int(round(duration * sr))
    for spk in speakers:
        for i in range(start, start + n_utts):
            utt = f"{spk}_{i:03d}"
            if layout == "0.92":
                d = root / "wav48_silence_trimmed" / spk
                write_audio(d / f"{utt}_mic1.{ext or 'flac'}", speech_like(n, sr, _seed_of(utt, "mic1")), sr)
                if mic2:
                    write_audio(d / f"{utt}_mic2.{ext or 'flac'}", speech_like(n, sr, _seed_of(utt, "mic2")), sr)
            elif layout == "0.80":
                write_audio(root / "wav48" / spk / f"{utt}.{ext or 'wav'}", speech_like(n, sr, _seed_of(utt)), sr)
            else:
                raise ValueError(f"unknown layout {layout!r}")
    return root


@pytest.fixture
def make_vctk(tmp_path):
    """`make_vctk(layout="0.92", speakers=..., n_utts=2, sr=48000, root=None, **kw)` -> corpus root
    (default ``tmp_path / "corpus"``)."""

    def _make(layout: str = "0.92", speakers=("p225", "p226"), n_utts: int = 2, sr: int = 48000,
              root: Path | None = None, **kw) -> Path:
        return make_vctk_corpus(root or tmp_path / "corpus", layout, speakers, n_utts, sr, **kw)

    return _make


def track_spec(name: str = "tiny", layout: str = "0.92", splits: dict | None = None, *,
               manifest: str | None = None, mic: str = "mic1") -> dict:
    splits = splits or {"train": ["p225"], "valid": ["p226"], "test": ["p227"]}
    return {
        "name": name, "version": 1, "split_id": f"{name}-v1",
        "corpus": {"name": "synthetic VCTK", "version": layout, "layout": layout, "mic": mic, "subdir": name},
        "download": None, "splits": splits, "manifest": manifest,
    }


@pytest.fixture
def make_track():
    """`make_track(name="tiny", layout="0.92", splits=None, manifest=None)` -> an unfrozen Track."""

    def _make(name: str = "tiny", layout: str = "0.92", splits: dict | None = None, **kw) -> Track:
        return Track(track_spec(name, layout, splits, **kw))

    return _make


def make_tiny_prepared(root: Path, name: str, duration: float):
    """A prepared track of 3 synthetic speakers (train p225, valid p226, test p227; 2 utterances of
    `duration` s each) under `root` (corpus/ and prepared/)."""
    from bench.data.prepare import prepare
    from bench.protocol import Protocol

    corpus = make_vctk_corpus(root / "corpus", "0.92", speakers=("p225", "p226", "p227"), n_utts=2, duration=duration)
    track = Track(track_spec(name, "0.92", {"train": ["p225"], "valid": ["p226"], "test": ["p227"]}))
    return prepare(track, Protocol.load(), corpus, root / "prepared", jobs=1)


# ---------------------------------------------------------------------------------------------
# committed runs
COMMITTED_TRACK = "vctk-mini"


def committed(model: str) -> Path:
    """The latest committed vctk-mini run folder of `model`."""
    from bench.scoring.results import RESULTS_DIR, find_run

    return find_run(model, COMMITTED_TRACK, RESULTS_DIR)


def copy_run(src: Path, results: Path, *, model: str | None = None, run_id: str | None = None,
             created: str | None = None, **model_fields) -> Path:
    """Copy a run folder to `results`/<track>/<noise>/<model>/<run_id> (its own track and noise folders),
    keeping summary.json consistent (its run id and model name; optionally its creation time and model
    fields)."""
    model, run_id = model or src.parent.name, run_id or src.name
    dst = results / src.parent.parent.parent.name / src.parent.parent.name / model / run_id
    shutil.copytree(src, dst)

    def fix(s):
        s["run_id"], s["model"]["name"] = run_id, model
        s["model"].update(model_fields)
        if created:
            s["created"] = created

    edit_summary(dst, fix)
    return dst


def copy_committed_runs(results: Path) -> Path:
    """`results` holding copies of every committed run of the ranked vctk-mini set."""
    from bench.scoring.results import RESULTS_DIR

    for d in sorted((RESULTS_DIR / COMMITTED_TRACK / "stft-v1").glob("*/*/summary.json")):
        copy_run(d.parent, results)
    return results


def edit_summary(run: Path, fn) -> None:
    """Apply `fn` to a run's summary.json in place."""
    from bench.scoring.results import dump_json

    s = json.loads((run / "summary.json").read_text())
    fn(s)
    (run / "summary.json").write_bytes(dump_json(s))
