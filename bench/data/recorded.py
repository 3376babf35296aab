"""Recorded noise: the noisy input of a track whose corpus gives clean/noisy pairs (VoiceBank-DEMAND), in the
place of a protocol (same ``name``, ``sha256``, ``record()``): ``name`` is ``recorded``, ``sha256`` the hash
of the track's noisy manifest (`noisy_manifest_bytes`), which changes exactly when a noisy recording does."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from bench.data.manifest import Utterance, manifest_bytes
from bench.core.errors import DataError

NAME = "recorded"


def noisy_manifest_bytes(rows: list[Utterance]) -> bytes:
    """The noisy files of a recorded-noise track as a manifest (same columns as a source manifest)."""
    if missing := [r.utt_id for r in rows if not r.noisy_path or not r.noisy_sha256_pcm16]:
        raise DataError(f"utterances without a noisy recording in the manifest: {', '.join(missing[:5])}")
    return manifest_bytes([replace(r, path=r.noisy_path, sha256_pcm16=r.noisy_sha256_pcm16, noisy_path="",
                                   noisy_sha256_pcm16="") for r in rows])


@dataclass(frozen=True)
class RecordedNoise:
    track: str
    track_version: int
    manifest: str  # the track's manifest file (committed, or source_manifest.csv of an unfrozen track)
    sha256: str

    name = NAME
    derived = False

    @classmethod
    def of(cls, track, prepared_dir: Path | None = None) -> "RecordedNoise":
        """The recorded noise of `track` (a `bench.data.tracks.Track` with ``"noise": {"kind": "recorded"}``)."""
        if not track.recorded:
            raise DataError(f"track {track.name} has no recorded noise; it is noised by a protocol")
        path = track.manifest_file(prepared_dir)
        digest = hashlib.sha256(noisy_manifest_bytes(track.utterances(prepared_dir))).hexdigest()
        return cls(track.name, track.version, Path(path).name, digest)

    @property
    def spec(self) -> dict:
        return {"name": NAME, "kind": "recorded", "track": self.track, "manifest": self.manifest}

    def record(self) -> dict:
        """`bench.protocol.Protocol.record`'s keys (``global_seed`` 0), ``kind`` and where the hashes are."""
        return {"name": NAME, "id": NAME, "version": self.track_version, "sha256": self.sha256, "global_seed": 0,
                "kind": "recorded", "source": f"noisy_path, noisy_sha256_pcm16 of {self.manifest} ({self.track})"}
