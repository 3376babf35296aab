"""Split manifests: one CSV row per utterance, pinning the audio by the SHA-256 of its int16 samples.

Columns: ``utt_id, speaker, split, path, sample_rate, num_samples, sha256_pcm16``, then optional
columns, written only when some row has them:

- ``corpus``: the key of the source corpus in a track drawn from several corpora (``path`` is then
  relative to that corpus's root);
- ``noisy_path, noisy_sha256_pcm16``: for a track whose noisy input is a recording given by the
  corpus (VoiceBank-DEMAND pairs), the noisy file of the pair (same rate and length as the clean one).

``path`` is relative to the corpus root; ``sample_rate``/``num_samples``/``sha256_pcm16`` describe the
source file as stored (before resampling), so a changed file is caught whatever its container.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from bench.core.errors import DataError

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
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in sorted(rows, key=lambda r: (SPLITS.index(r.split), r.utt_id)):
        w.writerow([getattr(r, c) for c in cols])
    return buf.getvalue().encode()


def write_manifest(path: Path, rows: list[Utterance]) -> str:
    from bench.core.audio import atomic_write_bytes

    payload = manifest_bytes(rows)
    atomic_write_bytes(Path(path), payload)
    return hashlib.sha256(payload).hexdigest()


def read_manifest(path: Path) -> list[Utterance]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: manifest does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = tuple(reader.fieldnames or ())
        optional = tuple(c for c in OPTIONAL_COLUMNS if c in header)
        if header[:len(COLUMNS)] != COLUMNS or header[len(COLUMNS):] != optional:
            raise DataError(f"{path}: manifest columns are {reader.fieldnames}, expected {list(COLUMNS)} "
                            f"(then optionally, in this order: {', '.join(OPTIONAL_COLUMNS)})")
        extra = header[len(COLUMNS):]
        rows = []
        for i, rec in enumerate(reader, start=2):
            try:
                rows.append(Utterance(rec["utt_id"], rec["speaker"], rec["split"], rec["path"],
                                      int(rec["sample_rate"]), int(rec["num_samples"]), rec["sha256_pcm16"],
                                      **{c: rec[c] or "" for c in extra}))
            except (TypeError, ValueError) as exc:
                raise DataError(f"{path}:{i}: malformed manifest row ({exc})") from None
            if rows[-1].split not in SPLITS:
                raise DataError(f"{path}:{i}: unknown split {rows[-1].split!r}")
    ids = [r.utt_id for r in rows]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"{path}: duplicate utterance ids ({', '.join(dup[:5])})")
    return rows


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["COLUMNS", "OPTIONAL_COLUMNS", "SPLITS", "Utterance", "read_manifest", "write_manifest", "manifest_bytes",
           "file_sha256", "asdict", "fields"]
