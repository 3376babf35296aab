"""The prepared form of a track: 16 kHz PCM16 clean audio for every split, and the frozen noisy sets of one
noise source (a protocol, a derived diagnostic protocol, or a pairs track's recorded noise), each with a
manifest of SHA-256 hashes. The noisy folder ``<noise>-<sha8>`` is keyed by the noise spec's hash, and
`require` checks prepared.json against the current protocol and track. Layout: docs/tracks.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import SAMPLE_RATE
from bench.core.audio import read_audio
from bench.core.files import read_csv
from bench.data.recorded import RecordedNoise
from bench.data.tracks import Track
from bench.core.errors import DataError

PREPARED_COLUMNS = ("utt_id", "split", "num_samples", "sha256_pcm16")
SHORT_HASH = 8


def noisy_splits(track: Track, noise) -> tuple[str, ...]:
    """The splits whose noisy audio is materialized: valid + test, or test alone for test-only tracks,
    recorded noise and derived (diagnostic) protocols."""
    test_only = track.test_only or getattr(noise, "derived", False) or isinstance(noise, RecordedNoise)
    return ("test",) if test_only else ("valid", "test")


@dataclass(frozen=True)
class PreparedTrack:
    track: Track
    protocol: object  # bench.protocol.Protocol, or RecordedNoise (a recorded-noise track always uses its own)
    root: Path        # the prepared dir (holds one folder per track)

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
        if self.track.recorded and not isinstance(self.protocol, RecordedNoise):
            object.__setattr__(self, "protocol", RecordedNoise.of(self.track, self.root))

    @property
    def track_dir(self) -> Path:
        return self.root / self.track.prepared_dirname

    @property
    def clean_dir(self) -> Path:
        return self.track_dir / "clean"

    @property
    def noisy_dirname(self) -> str:
        return f"{self.protocol.name}-{self.protocol.sha256[:SHORT_HASH]}"

    @property
    def noisy_dir(self) -> Path:
        return self.track_dir / self.noisy_dirname

    @property
    def noisy_splits(self) -> tuple[str, ...]:
        return noisy_splits(self.track, self.protocol)

    def clean_path(self, split: str, utt_id: str) -> Path:
        return self.clean_dir / split / f"{utt_id}.wav"

    def noisy_path(self, split: str, utt_id: str) -> Path:
        return self.noisy_dir / split / f"{utt_id}.wav"

    @property
    def is_prepared(self) -> bool:
        return all((d / "manifest.csv").exists() for d in (self.clean_dir, self.noisy_dir)) and \
            (self.noisy_dir / "prepared.json").exists()

    def prepare_command(self) -> str:
        proto = "" if isinstance(self.protocol, RecordedNoise) or self.protocol.name == "stft-v1" else \
            f" --protocol {self.protocol.name}"
        return f"bench data prepare --track {self.track.name}{proto}"

    def require(self) -> None:
        """Refuse a track not prepared, or prepared for another protocol spec or version of the track."""
        if not self.is_prepared:
            raise DataError(f"track {self.track.name} is not prepared for {self.protocol.name} "
                            f"(sha256 {self.protocol.sha256[:12]}...) in {self.root}",
                            hint=f"run `{self.prepare_command()}`")
        self.check_identity()

    def mismatches(self) -> list[str]:
        """How prepared.json differs from the current noise spec and track ([] when it matches)."""
        info = self.info()
        out = []
        got_p, want_p = info.get("protocol", {}), self.protocol.record()
        if (got_p.get("name"), got_p.get("sha256")) != (want_p["name"], want_p["sha256"]):
            out.append(f"noise {got_p.get('name')} sha256 {str(got_p.get('sha256'))[:12]}..., the current spec is "
                       f"{want_p['name']} sha256 {want_p['sha256'][:12]}...")
        got_t, want_t = info.get("track", {}), self.track.record(self.root)
        if (got_t.get("split_id"), got_t.get("manifest_sha256")) != (want_t["split_id"], want_t["manifest_sha256"]):
            out.append(f"split {got_t.get('split_id')} (manifest {str(got_t.get('manifest_sha256'))[:12]}...), "
                       f"the track is {want_t['split_id']} (manifest {want_t['manifest_sha256'][:12]}...)")
        return out

    def check_identity(self) -> None:
        if bad := self.mismatches():
            raise DataError(f"{self.noisy_dir}: prepared for " + "; ".join(bad)
                            + " -- refusing to use audio of another benchmark definition",
                            hint=f"run `{self.prepare_command()}` to prepare the current one")

    def manifest(self, which: str) -> list[dict]:
        return read_csv((self.clean_dir if which == "clean" else self.noisy_dir) / "manifest.csv")

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

    def sampling_weights(self) -> dict[str, float] | None:
        """Draw probabilities of the train utterances (`bench.data.sampling`); None: proportional to length."""
        return self.track.sampling_weights(self.root)

    def info(self) -> dict:
        return json.loads((self.noisy_dir / "prepared.json").read_text())

    def record(self) -> dict:
        """What a result scored on this set records: ``{"track": Track.record(), "protocol": noise record}``."""
        return {"track": self.track.record(self.root), "protocol": self.protocol.record()}


def _read16(path: Path) -> np.ndarray:
    x, sr = read_audio(path, mono="error")
    if sr != SAMPLE_RATE:
        raise DataError(f"{path}: prepared audio must be 16 kHz, is {sr} Hz; delete the prepared dir and prepare again")
    return x
