"""`bench data prepare`: source corpus -> 16 kHz clean audio -> frozen noisy valid/test sets.

Idempotent (outputs already on disk are hashed, not recomputed), atomic (every file is written
to a temporary name and renamed, so an interrupted prepare leaves no half file), parallel over
utterances (a process pool, one torch thread per worker; the output does not depend on the
number of workers because each utterance is processed alone from its own seed).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import SAMPLE_RATE, __version__
from bench.audio import (atomic_write_bytes, check_speech, from_pcm16, read_audio, resample, sha256_pcm16,
                         to_pcm16, write_wav_pcm16)
from bench.data.corpus import scan
from bench.data.manifest import Utterance, write_manifest
from bench.data.prepared import PREPARED_COLUMNS, PreparedTrack
from bench.data.tracks import Track
from bench.errors import BenchError, DataError, ManifestMismatch
from bench.protocol import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    utt: Utterance
    corpus_root: str
    clean_path: str
    noisy_path: str | None
    protocol_name: str
    verify_source: bool


def _init_worker():
    import torch

    torch.set_num_threads(1)


def _read_source(utt: Utterance, corpus_root: Path, verify: bool) -> tuple[np.ndarray, int]:
    path = corpus_root / utt.path
    if verify and not path.exists():
        raise ManifestMismatch(f"{path}: file listed in the manifest is missing", missing=[utt.path], changed=[])
    x, sr = read_audio(path)
    if verify:
        problems = []
        if sr != utt.sample_rate:
            problems.append(f"sample rate {sr} Hz, manifest says {utt.sample_rate} Hz")
        if x.shape[0] != utt.num_samples:
            problems.append(f"{x.shape[0]} samples, manifest says {utt.num_samples}")
        digest = sha256_pcm16(to_pcm16(x))
        if not problems and digest != utt.sha256_pcm16:
            problems.append(f"sha256_pcm16 {digest[:12]}..., manifest says {utt.sha256_pcm16[:12]}...")
        if problems:
            raise ManifestMismatch(f"{path}: changed file under the frozen manifest: " + "; ".join(problems),
                                   missing=[], changed=[utt.path])
    return x, sr


def _prepare_one(job: Job) -> dict:
    utt = job.utt
    out = {"utt_id": utt.utt_id, "split": utt.split, "error": None}
    try:
        clean_path = Path(job.clean_path)
        if clean_path.exists():
            x_clean, _ = read_audio(clean_path, mono="error")
            q = to_pcm16(x_clean)
        else:
            x, sr = _read_source(utt, Path(job.corpus_root), job.verify_source)
            check_speech(x, Path(job.corpus_root) / utt.path, allow_clipping=(utt.split == "train"))
            q = write_wav_pcm16(clean_path, resample(x, sr, SAMPLE_RATE))
        out.update(clean_samples=int(q.shape[0]), clean_sha256=sha256_pcm16(q))
        if job.noisy_path:
            noisy_path = Path(job.noisy_path)
            if noisy_path.exists():
                y, _ = read_audio(noisy_path, mono="error")
                qn = to_pcm16(y)
            else:
                proto = Protocol.load(job.protocol_name)
                qn = write_wav_pcm16(noisy_path, proto.apply(from_pcm16(q), utt.utt_id))
            out.update(noisy_samples=int(qn.shape[0]), noisy_sha256=sha256_pcm16(qn))
    except ManifestMismatch as exc:
        out.update(error=str(exc), missing=exc.missing, changed=exc.changed)
    except BenchError as exc:
        out["error"] = str(exc)
    return out


def _csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(PREPARED_COLUMNS)
    for r in rows:
        w.writerow([r[c] for c in PREPARED_COLUMNS])
    return buf.getvalue().encode()


def source_utterances(track: Track, corpus_root: Path, prepared_root: Path, jobs: int | None) -> tuple[list[Utterance], bool]:
    """The utterances to prepare, and whether their sources must be checked against a manifest."""
    if track.frozen:
        return track.utterances(), True
    manifest = prepared_root / track.name / "source_manifest.csv"
    if manifest.exists():
        return track.utterances(prepared_root), True
    rows = describe_sources(track, corpus_root, jobs=jobs)
    write_manifest(manifest, rows)
    log.info("wrote %s (%d utterances); commit it as bench/data/manifests/%s.csv to freeze the track",
             manifest, len(rows), track.name)
    return rows, False


def _describe(args) -> Utterance | str:
    root, sf_, split = args
    try:
        x, sr = read_audio(Path(root) / sf_.path)
        q = to_pcm16(x)
        return Utterance(sf_.utt_id, sf_.speaker, split, sf_.path, sr, int(q.shape[0]), sha256_pcm16(q))
    except BenchError as exc:
        return str(exc)


def describe_sources(track: Track, corpus_root: Path, *, jobs: int | None = None, progress=None) -> list[Utterance]:
    """Scan the corpus for the track's speakers and hash every file (the manifest of its sources)."""
    files = scan(corpus_root, track.speakers, layout=track.layout, mic=track.mic)
    args = [(str(corpus_root), f, track.split_of(f.speaker)) for f in files]
    with ProcessPoolExecutor(jobs or os.cpu_count(), initializer=_init_worker) as ex:
        res = list(ex.map(_describe, args, chunksize=8))
    errors = [r for r in res if isinstance(r, str)]
    if errors:
        raise DataError(f"{len(errors)} source file(s) could not be read:\n  " + "\n  ".join(errors[:20]))
    return res


def _write_if_changed(path: Path, payload: bytes) -> None:
    """Atomic write that leaves an identical file untouched (a re-run rewrites nothing)."""
    if path.exists() and path.read_bytes() == payload:
        return
    atomic_write_bytes(path, payload)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return pid > 0


def _remove_stale_tmp(track_dir: Path) -> None:
    """Delete the temporary files (``.<name>.<pid>.tmp``) an interrupted prepare left behind;
    those of a process still running (a concurrent prepare) are kept."""
    if not track_dir.is_dir():
        return
    for tmp in track_dir.rglob(".*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if not (pid.isdigit() and _pid_alive(int(pid))):
            log.info("removing %s (left by an interrupted prepare)", tmp)
            tmp.unlink(missing_ok=True)


def prepare(track: Track, protocol: Protocol, corpus_root: Path, prepared_root: Path, *,
            jobs: int | None = None, progress=None) -> PreparedTrack:
    """Prepare `track` for `protocol` under `prepared_root`; returns the PreparedTrack."""
    pt = PreparedTrack(track, protocol, Path(prepared_root))
    _remove_stale_tmp(pt.track_dir)
    utts, verify = source_utterances(track, Path(corpus_root), Path(prepared_root), jobs)
    job_list = [Job(u, str(corpus_root), str(pt.clean_path(u.split, u.utt_id)),
                    str(pt.noisy_path(u.split, u.utt_id)) if u.split in ("valid", "test") else None,
                    protocol.name, verify) for u in utts]
    results = []
    task = progress.add_task(f"prepare {track.name}", total=len(job_list)) if progress else None
    with ProcessPoolExecutor(jobs or os.cpu_count(), initializer=_init_worker) as ex:
        for r in ex.map(_prepare_one, job_list, chunksize=4):
            results.append(r)
            if progress:
                progress.advance(task)
    errors = [r["error"] for r in results if r["error"]]
    missing = [p for r in results for p in r.get("missing", ())]
    changed = [p for r in results for p in r.get("changed", ())]
    if missing or changed:
        raise ManifestMismatch(f"{len(missing)} missing and {len(changed)} changed source file(s) under the "
                               f"manifest of {track.name} ({len(errors)} of {len(results)} utterances failed):\n  "
                               + "\n  ".join(errors[:20]), missing=missing, changed=changed,
                               hint=f"restore the original files (`bench data verify --track {track.name}` lists them)")
    if errors:
        raise DataError(f"{len(errors)} of {len(results)} utterances failed (finished files are kept; "
                        f"fix these and run the same command again):\n  " + "\n  ".join(errors[:20]))
    clean_rows = [{"utt_id": r["utt_id"], "split": r["split"], "num_samples": r["clean_samples"],
                   "sha256_pcm16": r["clean_sha256"]} for r in results]
    noisy_rows = [{"utt_id": r["utt_id"], "split": r["split"], "num_samples": r["noisy_samples"],
                   "sha256_pcm16": r["noisy_sha256"]} for r in results if "noisy_sha256" in r]
    _write_if_changed(pt.clean_dir / "manifest.csv", _csv_bytes(clean_rows))
    _write_if_changed(pt.noisy_dir / "manifest.csv", _csv_bytes(noisy_rows))
    info = {"bench_version": __version__, "protocol": protocol.record(), "track": track.record(prepared_root),
            "counts": {s: sum(1 for r in results if r["split"] == s) for s in ("train", "valid", "test")}}
    _write_if_changed(pt.noisy_dir / "prepared.json", json.dumps(info, indent=2).encode())
    return pt
