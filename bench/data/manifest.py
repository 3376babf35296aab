"""Split manifests: one CSV row per utterance, pinning the audio by the SHA-256 of its int16 samples.

Columns: ``utt_id, speaker, split, path, sample_rate, num_samples, sha256_pcm16``. ``path`` is
relative to the corpus root; ``sample_rate``/``num_samples``/``sha256_pcm16`` describe the source
file as stored (before resampling), so a changed file is caught whatever its container.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from bench.errors import DataError

COLUMNS = ("utt_id", "speaker", "split", "path", "sample_rate", "num_samples", "sha256_pcm16")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    speaker: str
    split: str
    path: str
    sample_rate: int
    num_samples: int
    sha256_pcm16: str


def manifest_bytes(rows: list[Utterance]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in sorted(rows, key=lambda r: (SPLITS.index(r.split), r.utt_id)):
        w.writerow([getattr(r, c) for c in COLUMNS])
    return buf.getvalue().encode()


def write_manifest(path: Path, rows: list[Utterance]) -> str:
    from bench.audio import atomic_write_bytes

    payload = manifest_bytes(rows)
    atomic_write_bytes(Path(path), payload)
    return hashlib.sha256(payload).hexdigest()


def read_manifest(path: Path) -> list[Utterance]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: manifest does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise DataError(f"{path}: manifest columns are {reader.fieldnames}, expected {list(COLUMNS)}")
        rows = []
        for i, rec in enumerate(reader, start=2):
            try:
                rows.append(Utterance(rec["utt_id"], rec["speaker"], rec["split"], rec["path"],
                                      int(rec["sample_rate"]), int(rec["num_samples"]), rec["sha256_pcm16"]))
            except (TypeError, ValueError) as exc:
                raise DataError(f"{path}:{i}: malformed manifest row ({exc})") from None
            if rows[-1].split not in SPLITS:
                raise DataError(f"{path}:{i}: unknown split {rows[-1].split!r}")
    ids = [r.utt_id for r in rows]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: duplicate utterance ids")
    return rows


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["COLUMNS", "SPLITS", "Utterance", "read_manifest", "write_manifest", "manifest_bytes",
           "file_sha256", "asdict", "fields"]
