"""Split manifests: one CSV row per utterance, pinning the source audio by the SHA-256 of its int16 samples
(`COLUMNS`, then the `OPTIONAL_COLUMNS` some rows have; docs/tracks.md describes each column)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, fields  # noqa: F401  (fields: the tests read the columns with it)
from pathlib import Path

from bench.core.errors import DataError
from bench.core.files import atomic_write_bytes, csv_bytes

COLUMNS = ("utt_id", "speaker", "split", "path", "sample_rate", "num_samples", "sha256_pcm16")
OPTIONAL_COLUMNS = ("corpus", "noisy_path", "noisy_sha256_pcm16")
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
    corpus: str = ""               # "" in a single-corpus track
    noisy_path: str = ""           # recorded-noise tracks only
    noisy_sha256_pcm16: str = ""

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate


def _columns(rows: list[Utterance]) -> tuple[str, ...]:
    return COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if any(getattr(r, c) for r in rows))


def manifest_bytes(rows: list[Utterance]) -> bytes:
    cols = _columns(rows)
    return csv_bytes(cols, ([getattr(r, c) for c in cols] for r in sorted(rows, key=lambda r: (SPLITS.index(r.split),
                                                                                              r.utt_id))))


def write_manifest(path: Path, rows: list[Utterance]) -> str:
    payload = manifest_bytes(rows)
    atomic_write_bytes(Path(path), payload)
    return hashlib.sha256(payload).hexdigest()


#: parsed manifests by (path, SHA-256 of the bytes): the board reads one per results folder
_PARSED: dict[tuple[str, str], tuple[Utterance, ...]] = {}


def read_manifest(path: Path) -> list[Utterance]:
    """The rows of a manifest; a file read before with the same bytes is not parsed again."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: manifest does not exist")
    raw = path.read_bytes()
    key = (str(path.resolve()), hashlib.sha256(raw).hexdigest())
    if key not in _PARSED:
        if len(_PARSED) >= 64:
            _PARSED.clear()
        _PARSED[key] = tuple(_parse_manifest(path, raw))
    return list(_PARSED[key])


def _parse_manifest(path: Path, raw: bytes) -> list[Utterance]:
    with io.StringIO(raw.decode(), newline="") as fh:
        reader = csv.DictReader(fh)
        header = tuple(reader.fieldnames or ())
        optional = tuple(c for c in OPTIONAL_COLUMNS if c in header)
        if header[:len(COLUMNS)] != COLUMNS or header[len(COLUMNS):] != optional:
            raise DataError(f"{path}: manifest columns are {reader.fieldnames}, expected {list(COLUMNS)} "
                            f"(then optionally, in this order: {', '.join(OPTIONAL_COLUMNS)})")
        rows = []
        for i, rec in enumerate(reader, start=2):
            try:
                rows.append(Utterance(rec["utt_id"], rec["speaker"], rec["split"], rec["path"],
                                      int(rec["sample_rate"]), int(rec["num_samples"]), rec["sha256_pcm16"],
                                      **{c: rec[c] or "" for c in optional}))
            except (TypeError, ValueError) as exc:
                raise DataError(f"{path}:{i}: malformed manifest row ({exc})") from None
            if rows[-1].split not in SPLITS:
                raise DataError(f"{path}:{i}: unknown split {rows[-1].split!r}")
    if dup := sorted(i for i, n in Counter(r.utt_id for r in rows).items() if n > 1):
        raise DataError(f"{path}: duplicate utterance ids ({', '.join(dup[:5])})")
    return rows
