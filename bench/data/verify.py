"""`bench data verify`: a local corpus and its prepared audio against the frozen manifests, naming every
missing or changed file. Files compare by the SHA-256 of their decoded int16 samples (re-encoding is fine,
a changed sample is not); prepared noisy sets also against the committed reference hashes of the noise
(``bench/data/manifests/<manifest stem>.<noise>.csv``), and prepared.json must name the current definition."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.core.audio import file_sha256_pcm16
from bench.core.errors import BenchError
from bench.core.files import read_csv
from bench.core.workers import worker_pool
from bench.data.manifest import Utterance
from bench.data.prepared import PreparedTrack
from bench.data.tracks import Track


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
    with worker_pool(jobs) as ex:
        for path, status, detail in ex.map(_check, pairs, chunksize=16):
            report.checked += 1
            if status != "ok":
                getattr(report, status).append(detail if status == "unreadable" else path)


def verify_sources(track: Track, corpus_root, rows: list[Utterance], *, jobs: int | None = None) -> Report:
    """Every source file of `rows` (and the noisy file of a pair) against its hash; files the track's
    selections would take that are not in the manifest are listed as ``extra``."""
    report = Report()
    roots = track.roots(corpus_root)
    pairs = [(str(track.source_path(roots, u)), u.sha256_pcm16) for u in rows]
    pairs += [(str(track.source_path(roots, u, noisy=True)), u.noisy_sha256_pcm16) for u in rows if u.noisy_path]
    _run(pairs, jobs, report)
    listed = {(u.corpus or track.primary_corpus, u.path) for u in rows}
    for sel in track.selections():
        try:
            found = track.scan_files(sel, roots[sel.corpus], strict=False)
        except BenchError:
            continue  # a corpus folder that is not there: its files are reported missing above
        report.extra += [f.path for f in found if (sel.corpus, f.path) not in listed]
    return report


def verify_prepared(pt: PreparedTrack, *, jobs: int | None = None) -> Report:
    report = Report()
    for problem in pt.mismatches():
        report.changed.append(f"{pt.noisy_dir}: prepared for {problem} (run `{pt.prepare_command()}`)")
    pairs = [(str(pt.clean_path(r["split"], r["utt_id"])), r["sha256_pcm16"]) for r in pt.manifest("clean")]
    pairs += [(str(pt.noisy_path(r["split"], r["utt_id"])), r["sha256_pcm16"]) for r in pt.manifest("noisy")]
    _run(pairs, jobs, report)
    if (ref_path := pt.track.reference_noisy_path(pt.protocol.name)).exists():
        ref = {r["utt_id"]: r["sha256_pcm16"] for r in read_csv(ref_path)}
        local = {r["utt_id"]: r["sha256_pcm16"] for r in pt.manifest("noisy")}
        if diff := sorted(u for u, h in ref.items() if local.get(u) != h):
            report.changed.extend(f"{pt.noisy_dir}/<split>/{u}.wav (differs from the committed reference hash)"
                                  for u in diff)
        else:
            report.notes.append(f"noisy {'/'.join(pt.noisy_splits)} audio ({pt.protocol.name}) matches the committed "
                                f"reference hashes ({len(ref)} files, {ref_path.name})")
    return report
