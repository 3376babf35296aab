"""The prepared form of a track: 16 kHz PCM16 clean audio for every split, and the frozen noisy
valid/test sets of one protocol, each with a manifest of SHA-256 hashes.

Layout under the prepared dir (default ``<repo>/prepared``, git-ignored)::

    <track>/clean/<split>/<utt>.wav              16 kHz PCM16, all splits
    <track>/clean/manifest.csv                   utt_id, split, num_samples, sha256_pcm16
    <track>/<protocol>/<split>/<utt>.wav         frozen noisy valid + test
    <track>/<protocol>/manifest.csv              same columns
    <track>/<protocol>/prepared.json             protocol + track records
    <track>/source_manifest.csv                  unfrozen tracks only: the source manifest written at first prepare
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import SAMPLE_RATE
from bench.audio import read_audio
from bench.data.tracks import Track
from bench.errors import DataError
from bench.protocol import Protocol

PREPARED_COLUMNS = ("utt_id", "split", "num_samples", "sha256_pcm16")


@dataclass(frozen=True)
class PreparedTrack:
    track: Track
    protocol: Protocol
    root: Path  # the prepared dir (holds one folder per track)

    @property
    def track_dir(self) -> Path:
        return self.root / self.track.name

    @property
    def clean_dir(self) -> Path:
        return self.track_dir / "clean"

    @property
    def noisy_dir(self) -> Path:
        return self.track_dir / self.protocol.name

    def clean_path(self, split: str, utt_id: str) -> Path:
        return self.clean_dir / split / f"{utt_id}.wav"

    def noisy_path(self, split: str, utt_id: str) -> Path:
        return self.noisy_dir / split / f"{utt_id}.wav"

    @property
    def is_prepared(self) -> bool:
        return (self.clean_dir / "manifest.csv").exists() and (self.noisy_dir / "manifest.csv").exists()

    def require(self) -> None:
        if not self.is_prepared:
            raise DataError(f"track {self.track.name} is not prepared for protocol {self.protocol.name} in {self.root}",
                            hint=f"run `bench data prepare --track {self.track.name}`")

    def manifest(self, which: str) -> list[dict]:
        path = (self.clean_dir if which == "clean" else self.noisy_dir) / "manifest.csv"
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))

    def utt_ids(self, split: str) -> list[str]:
        self.require()
        return [r["utt_id"] for r in self.manifest("clean") if r["split"] == split]

    def load_clean(self, split: str, utt_id: str) -> np.ndarray:
        return _read16(self.clean_path(split, utt_id))

    def load_noisy(self, split: str, utt_id: str) -> np.ndarray:
        return _read16(self.noisy_path(split, utt_id))

    def load_split(self, split: str, *, noisy: bool = False) -> dict[str, np.ndarray]:
        load = self.load_noisy if noisy else self.load_clean
        return {u: load(split, u) for u in self.utt_ids(split)}

    def info(self) -> dict:
        return json.loads((self.noisy_dir / "prepared.json").read_text())


def _read16(path: Path) -> np.ndarray:
    x, sr = read_audio(path, mono="error")
    if sr != SAMPLE_RATE:
        raise DataError(f"{path}: prepared audio must be 16 kHz, is {sr} Hz; delete the prepared dir and prepare again")
    return x
