"""`bench data verify`: check a local corpus (and prepared audio) against the frozen manifests.

Names every missing or changed file. Source files are compared by the SHA-256 of their decoded
int16 samples (``sha256_pcm16``), so re-encoding (WAV <-> FLAC) is fine but any sample change is not.
The prepared noisy sets are also compared with the committed reference hashes of the protocol
(``bench/data/manifests/<track>.<protocol>.csv``) when they exist: a mismatch there means the
protocol produced different audio on this platform.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.audio import file_sha256_pcm16
from bench.data.corpus import LAYOUTS
from bench.data.manifest import Utterance
from bench.data.prepared import PreparedTrack
from bench.data.tracks import MANIFEST_DIR, Track
from bench.errors import BenchError


@dataclass
class Report:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.unreadable)


def _check(args) -> tuple[str, str, str]:
    path, expected = args
    p = Path(path)
    if not p.exists():
        return path, "missing", ""
    try:
        got = file_sha256_pcm16(p)
    except BenchError as exc:
        return path, "unreadable", str(exc)
    return path, ("ok" if got == expected else "changed"), got


def _run(pairs: list[tuple[str, str]], jobs: int | None, report: Report) -> None:
    with ProcessPoolExecutor(jobs or os.cpu_count()) as ex:
        for path, status, detail in ex.map(_check, pairs, chunksize=16):
            report.checked += 1
            if status == "missing":
                report.missing.append(path)
            elif status == "changed":
                report.changed.append(path)
            elif status == "unreadable":
                report.unreadable.append(detail)


def verify_sources(track: Track, corpus_root: Path, rows: list[Utterance], *, jobs: int | None = None) -> Report:
    report = Report()
    _run([(str(Path(corpus_root) / u.path), u.sha256_pcm16) for u in rows], jobs, report)
    listed = {u.path for u in rows}
    audio_dir = Path(corpus_root) / LAYOUTS[track.layout]["dir"]
    for spk in track.speakers:
        sdir = audio_dir / spk
        if sdir.is_dir():
            for f in sorted(sdir.iterdir()):
                rel = f.relative_to(corpus_root).as_posix()
                if f.suffix in (".wav", ".flac") and rel not in listed and (track.layout != "0.92" or track.mic in f.name):
                    report.extra.append(rel)
    return report


def verify_prepared(pt: PreparedTrack, *, jobs: int | None = None) -> Report:
    report = Report()
    pairs = [(str(pt.clean_path(r["split"], r["utt_id"])), r["sha256_pcm16"]) for r in pt.manifest("clean")]
    pairs += [(str(pt.noisy_path(r["split"], r["utt_id"])), r["sha256_pcm16"]) for r in pt.manifest("noisy")]
    _run(pairs, jobs, report)
    ref = reference_noisy_manifest(pt)
    if ref is not None:
        local = {r["utt_id"]: r["sha256_pcm16"] for r in pt.manifest("noisy")}
        diff = sorted(u for u, h in ref.items() if local.get(u) != h)
        if diff:
            report.changed.extend(f"{pt.noisy_dir}/<split>/{u}.wav (differs from the committed reference hash)" for u in diff)
        else:
            report.notes.append(f"noisy valid/test audio matches the committed reference hashes ({len(ref)} files)")
    return report


def reference_noisy_path(pt: PreparedTrack) -> Path:
    return MANIFEST_DIR / f"{pt.track.name}.{pt.protocol.name}.csv"


def reference_noisy_manifest(pt: PreparedTrack) -> dict[str, str] | None:
    path = reference_noisy_path(pt)
    if not path.exists():
        return None
    with open(path, newline="") as fh:
        return {r["utt_id"]: r["sha256_pcm16"] for r in csv.DictReader(fh)}
