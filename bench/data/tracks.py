"""Tracks: a corpus plus a frozen train/valid/test split by disjoint speakers.

Each track is one JSON file in ``bench/data/tracks/`` (speaker lists, selection rule, corpus
layout, download source) and, once frozen, a committed manifest in ``bench/data/manifests/``
pinning every file by hash. Results record the track's ``split_id`` and the manifest's SHA-256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bench.data.manifest import SPLITS, Utterance, file_sha256, read_manifest
from bench.errors import DataError

TRACK_DIR = Path(__file__).resolve().parent / "tracks"
MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
DEFAULT_TRACK = "vctk-mini"


def available_tracks() -> list[str]:
    return sorted(p.stem for p in TRACK_DIR.glob("*.json"))


@dataclass(frozen=True)
class Track:
    spec: dict = field(repr=False)

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def split_id(self) -> str:
        return self.spec["split_id"]

    @property
    def splits(self) -> dict[str, list[str]]:
        return self.spec["splits"]

    @property
    def layout(self) -> str:
        return self.spec["corpus"]["layout"]

    @property
    def mic(self) -> str:
        return self.spec["corpus"].get("mic", "mic1")

    @property
    def corpus_dir(self) -> str:
        c = self.spec["corpus"]
        return c.get("subdir") or (self.spec.get("download") or {}).get("extract_to") or self.name

    @property
    def manifest_path(self) -> Path | None:
        m = self.spec.get("manifest")
        return MANIFEST_DIR / m if m else None

    @property
    def frozen(self) -> bool:
        return self.manifest_path is not None and self.manifest_path.exists()

    def split_of(self, speaker: str) -> str:
        for split in SPLITS:
            if speaker in self.splits[split]:
                return split
        raise DataError(f"speaker {speaker} is in no split of track {self.name}")

    @property
    def speakers(self) -> list[str]:
        return [s for split in SPLITS for s in self.splits[split]]

    def get_data_command(self) -> str:
        if self.spec.get("download"):
            return f"run `bench data download {self.name}` (or pass --data-root to a folder holding {self.corpus_dir}/)"
        return (f"the {self.name} corpus ships beside the repository in ../shared/data/{self.corpus_dir}; "
                f"pass `--data-root /path/to/data` or set BENCH_DATA_ROOT to the folder holding {self.corpus_dir}/")

    def manifest_file(self, prepared_dir: Path | None = None) -> Path:
        """The manifest in force: the committed one, or for an unfrozen track the one written at first prepare."""
        if self.frozen:
            return self.manifest_path
        if prepared_dir is not None:
            p = Path(prepared_dir) / self.name / "source_manifest.csv"
            if p.exists():
                return p
        raise DataError(f"track {self.name} has no frozen manifest yet and has not been prepared",
                        hint=f"run `bench data prepare --track {self.name}` first")

    def utterances(self, prepared_dir: Path | None = None, split: str | None = None) -> list[Utterance]:
        rows = read_manifest(self.manifest_file(prepared_dir))
        return [r for r in rows if split is None or r.split == split]

    def record(self, prepared_dir: Path | None = None) -> dict:
        """What results store about the track and its split."""
        path = self.manifest_file(prepared_dir)
        return {"name": self.name, "version": int(self.spec["version"]), "split_id": self.split_id,
                "manifest_sha256": file_sha256(path), "frozen": self.frozen}


def validate_track_spec(spec: dict, source: str = "track spec") -> None:
    for key in ("name", "version", "split_id", "corpus", "splits"):
        if key not in spec:
            raise DataError(f"{source}: missing field {key!r}")
    seen: dict[str, str] = {}
    for split in SPLITS:
        if split not in spec["splits"] or not spec["splits"][split]:
            raise DataError(f"{source}: split {split!r} has no speakers")
        for spk in spec["splits"][split]:
            if spk in seen:
                raise DataError(f"{source}: speaker {spk} is in both {seen[spk]} and {split}; splits must be disjoint")
            seen[spk] = split


@lru_cache(maxsize=None)
def load_track(name: str = DEFAULT_TRACK) -> Track:
    path = TRACK_DIR / f"{name}.json"
    if not path.exists():
        raise DataError(f"unknown track {name!r}", hint=f"available: {', '.join(available_tracks())}")
    spec = json.loads(path.read_text())
    validate_track_spec(spec, str(path))
    return Track(spec)
