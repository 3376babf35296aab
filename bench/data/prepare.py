"""`bench data prepare`: source corpora -> 16 kHz clean audio -> frozen noisy valid/test sets. Idempotent
(files on disk are hashed, not recomputed), atomic (temporary name, then rename) and parallel over utterances
(each from its own seed, so the output does not depend on the number of workers)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import SAMPLE_RATE, __version__
from bench.core.audio import check_speech, from_pcm16, read_audio, resample, sha256_pcm16, to_pcm16, write_wav_pcm16
from bench.core.errors import BenchError, DataError, ManifestMismatch
from bench.core.files import atomic_write_bytes, csv_bytes
from bench.core.locks import folder_lock
from bench.core.names import inside, validate_track_name
from bench.core.workers import worker_pool
from bench.corpora.root import prepared_root as default_prepared_root
from bench.data.manifest import Utterance, write_manifest
from bench.data.prepared import PREPARED_COLUMNS, PreparedTrack
from bench.data.recorded import RecordedNoise
from bench.data.tracks import Track, load_track
from bench.protocol import DEFAULT_PROTOCOL, Protocol, canonical_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    utt: Utterance
    source: str                 # the clean source file
    noisy_source: str | None    # recorded-noise tracks: the noisy source file of the pair
    clean_path: str
    noisy_path: str | None
    protocol_spec: dict | None  # the noising protocol's spec (None for recorded noise)
    verify_source: bool


_PROTOCOLS: dict[str, Protocol] = {}


def _protocol(spec: dict) -> Protocol:
    if (key := canonical_json(spec).decode()) not in _PROTOCOLS:
        _PROTOCOLS[key] = Protocol.from_spec(spec)
    return _PROTOCOLS[key]


def _read_source(path: Path, utt: Utterance, verify: bool, sha: str, listed: str) -> tuple[np.ndarray, int]:
    """A source file, checked against its manifest row when `verify` (a mismatch names `listed`)."""
    if verify and not path.exists():
        raise ManifestMismatch(f"{path}: file listed in the manifest is missing", missing=[listed], changed=[])
    x, sr = read_audio(path)
    if verify:
        problems = []
        if sr != utt.sample_rate:
            problems.append(f"sample rate {sr} Hz, manifest says {utt.sample_rate} Hz")
        if x.shape[0] != utt.num_samples:
            problems.append(f"{x.shape[0]} samples, manifest says {utt.num_samples}")
        digest = sha256_pcm16(to_pcm16(x))
        if not problems and digest != sha:
            problems.append(f"sha256_pcm16 {digest[:12]}..., manifest says {sha[:12]}...")
        if problems:
            raise ManifestMismatch(f"{path}: changed file under the frozen manifest: " + "; ".join(problems),
                                   missing=[], changed=[listed])
    return x, sr


def _existing(path: Path) -> np.ndarray | None:
    """The int16 samples of an output already on disk (None when there is none)."""
    return to_pcm16(read_audio(path, mono="error")[0]) if path.exists() else None


def _prepare_one(job: Job) -> dict:
    utt = job.utt
    out = {"utt_id": utt.utt_id, "split": utt.split, "error": None}
    try:
        q = _existing(Path(job.clean_path))
        if q is None:
            x, sr = _read_source(Path(job.source), utt, job.verify_source, utt.sha256_pcm16, utt.path)
            check_speech(x, Path(job.source), allow_clipping=(utt.split == "train"))
            q = write_wav_pcm16(Path(job.clean_path), resample(x, sr, SAMPLE_RATE))
        out.update(clean_samples=int(q.shape[0]), clean_sha256=sha256_pcm16(q))
        if job.noisy_path:
            qn = _existing(Path(job.noisy_path))
            if qn is None and job.noisy_source:
                y, sr = _read_source(Path(job.noisy_source), utt, job.verify_source, utt.noisy_sha256_pcm16,
                                     utt.noisy_path)
                qn = write_wav_pcm16(Path(job.noisy_path), resample(y, sr, SAMPLE_RATE))
            elif qn is None:
                qn = write_wav_pcm16(Path(job.noisy_path), _protocol(job.protocol_spec).apply(from_pcm16(q), utt.utt_id))
            out.update(noisy_samples=int(qn.shape[0]), noisy_sha256=sha256_pcm16(qn))
    except ManifestMismatch as exc:
        out.update(error=str(exc), missing=exc.missing, changed=exc.changed)
    except BenchError as exc:
        out["error"] = str(exc)
    return out


def _csv_bytes(results: list[dict], which: str) -> bytes:
    """The manifest (`PREPARED_COLUMNS`) of the `which` ("clean" or "noisy") files among `results`."""
    return csv_bytes(PREPARED_COLUMNS, ([r["utt_id"], r["split"], r[f"{which}_samples"], r[f"{which}_sha256"]]
                                        for r in results if f"{which}_sha256" in r))


def source_utterances(track: Track, corpus_root, prepared_root: Path, jobs: int | None) -> tuple[list[Utterance], bool]:
    """The utterances to prepare, and whether their sources must be checked against a manifest."""
    if track.frozen:
        return track.utterances(), True
    manifest = prepared_root / track.prepared_dirname / "source_manifest.csv"
    if manifest.exists():
        return track.utterances(prepared_root), True
    rows = describe_sources(track, corpus_root, jobs=jobs)
    write_manifest(manifest, rows)
    log.info("wrote %s (%d utterances); commit it as bench/data/manifests/%s.csv to freeze the track",
             manifest, len(rows), track.name)
    return rows, False


def _describe(args) -> Utterance | str:
    root, sf_, split, corpus = args
    try:
        x, sr = read_audio(Path(root) / sf_.path)
        q = to_pcm16(x)
        noisy = {}
        if sf_.noisy_path:
            y, nsr = read_audio(Path(root) / sf_.noisy_path)
            if nsr != sr or y.shape[0] != x.shape[0]:
                return (f"{Path(root) / sf_.noisy_path}: the noisy file of a pair must match its clean file "
                        f"({nsr} Hz, {y.shape[0]} samples vs {sr} Hz, {x.shape[0]} samples)")
            noisy = {"noisy_path": sf_.noisy_path, "noisy_sha256_pcm16": sha256_pcm16(to_pcm16(y))}
        return Utterance(sf_.utt_id, sf_.speaker, split, sf_.path, sr, int(q.shape[0]), sha256_pcm16(q),
                         corpus=corpus, **noisy)
    except BenchError as exc:
        return str(exc)


def source_files(track: Track, corpus_root) -> list[tuple[str, object, str, str]]:
    """(corpus folder, SourceFile, split, corpus key) of every utterance the track's selections take."""
    roots = track.roots(corpus_root)
    out = [(str(roots[sel.corpus]), f, sel.split, sel.corpus) for sel in track.selections()
           for f in track.scan_files(sel, roots[sel.corpus])]
    if dup := sorted(i for i, n in Counter(f.utt_id for _, f, _, _ in out).items() if n > 1):
        raise DataError(f"track {track.name}: utterance ids are not unique across its corpora: {', '.join(dup[:5])}")
    return out


def describe_sources(track: Track, corpus_root, *, jobs: int | None = None, progress=None) -> list[Utterance]:
    """Scan the corpora for the track's selections and hash every file (the manifest of its sources)."""
    args = source_files(track, corpus_root)
    with worker_pool(jobs) as ex:
        res = list(ex.map(_describe, args, chunksize=8))
    if errors := [r for r in res if isinstance(r, str)]:
        raise DataError(f"{len(errors)} source file(s) could not be read:\n  " + "\n  ".join(errors[:20]))
    return res


def _write_if_changed(path: Path, payload: bytes) -> None:
    """Atomic write that leaves an identical file untouched (a re-run rewrites nothing)."""
    if not (path.exists() and path.read_bytes() == payload):
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
    """Delete the temporary files of interrupted prepares (not those of a process still running)."""
    if not track_dir.is_dir():
        return
    for tmp in track_dir.rglob(".*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if not (pid.isdigit() and _pid_alive(int(pid))):
            log.info("removing %s (left by an interrupted prepare)", tmp)
            tmp.unlink(missing_ok=True)


def _check_track_dir(pt: PreparedTrack) -> None:
    """Prepared audio of another version of the track (or from before track records) is removed, never reused:
    its clean files could come from other sources. Then the current track record is written."""
    marker = pt.track_dir / "track.json"
    want = pt.track.record(pt.root)
    have = json.loads(marker.read_text()) if marker.exists() else None
    stale = have is not None and (have.get("split_id"), have.get("manifest_sha256")) != \
        (want["split_id"], want["manifest_sha256"])
    if stale or (have is None and pt.clean_dir.exists()):
        old = f"split {have.get('split_id')}" if have else "an older bench version"
        for d in sorted(p.parent for p in pt.track_dir.glob("*/prepared.json")) + [pt.clean_dir]:
            if d.is_dir():
                log.warning("removing %s: prepared for %s, the track is now %s", d, old, want["split_id"])
                shutil.rmtree(d)
    _write_if_changed(marker, json.dumps(want, indent=2).encode())


def prepare(track: Track, protocol, corpus_root, prepared_root: Path, *,
            jobs: int | None = None, progress=None) -> PreparedTrack:
    """Prepare `track` for `protocol` under `prepared_root` (`corpus_root`: see `Track.roots`); a recorded-noise
    track ignores `protocol`, a derived protocol makes the test split only (over clean audio made if missing)."""
    prepared_root = Path(prepared_root)
    roots = track.roots(corpus_root)
    track_dir = inside(prepared_root, prepared_root / validate_track_name(track.prepared_dirname), "prepared track")
    with folder_lock(track_dir, f"prepared track {track_dir}",
                     hint="another `bench data prepare` (or `bench run`) is preparing it; wait for it to finish"):
        return _prepare(track, protocol, roots, prepared_root, jobs=jobs, progress=progress)


def _prepare(track: Track, protocol, roots, prepared_root: Path, *, jobs: int | None, progress) -> PreparedTrack:
    _remove_stale_tmp(prepared_root / track.prepared_dirname)
    utts, verify = source_utterances(track, roots, prepared_root, jobs)
    pt = PreparedTrack(track, protocol, prepared_root)
    _check_track_dir(pt)
    nsplits = pt.noisy_splits
    clean_done = (pt.clean_dir / "manifest.csv").exists()
    todo = [u for u in utts if u.split in nsplits] if (getattr(pt.protocol, "derived", False) and clean_done) else utts
    spec = None if isinstance(pt.protocol, RecordedNoise) else pt.protocol.spec
    job_list = [Job(u, str(roots[u.corpus or track.primary_corpus] / u.path),
                    str(roots[u.corpus or track.primary_corpus] / u.noisy_path) if u.noisy_path else None,
                    str(pt.clean_path(u.split, u.utt_id)),
                    str(pt.noisy_path(u.split, u.utt_id)) if u.split in nsplits else None,
                    spec, verify) for u in todo]
    results = []
    task = progress.add_task(f"prepare {track.name} ({pt.noisy_dirname})", total=len(job_list)) if progress else None
    with worker_pool(jobs) as ex:
        for r in ex.map(_prepare_one, job_list, chunksize=4):
            results.append(r)
            if progress:
                progress.advance(task)
    _raise_failures(track, results)
    if len(todo) == len(utts):
        _write_if_changed(pt.clean_dir / "manifest.csv", _csv_bytes(results, "clean"))
    _write_if_changed(pt.noisy_dir / "manifest.csv", _csv_bytes(results, "noisy"))
    info = {"bench_version": __version__, "protocol": pt.protocol.record(), "track": track.record(prepared_root),
            "counts": {s: sum(1 for u in utts if u.split == s) for s in ("train", "valid", "test")},
            "noisy_splits": list(nsplits)}
    _write_if_changed(pt.noisy_dir / "prepared.json", json.dumps(info, indent=2).encode())
    return pt


def _raise_failures(track: Track, results: list[dict]) -> None:
    """A `ManifestMismatch` for missing or changed source files, else a `DataError` for any failure."""
    errors = [r["error"] for r in results if r["error"]]
    missing = [p for r in results for p in r.get("missing", ())]
    changed = [p for r in results for p in r.get("changed", ())]
    other = sum(1 for r in results if r["error"] and not (r.get("missing") or r.get("changed")))
    if missing or changed:
        raise ManifestMismatch(f"{len(missing)} missing, {len(changed)} changed and {other} unreadable or invalid "
                               f"source file(s) under the manifest of {track.name} ({len(errors)} of {len(results)} "
                               f"utterances failed):\n  "
                               + "\n  ".join(errors[:20]), missing=missing, changed=changed,
                               hint=f"restore the original files (`bench data verify --track {track.name}` lists them)")
    if errors:
        raise DataError(f"{len(errors)} of {len(results)} utterances failed (finished files are kept; "
                        f"fix these and run the same command again):\n  " + "\n  ".join(errors[:20]))


def prepare_diagnostics(track: Track, protocol: Protocol, corpus_root, prepared_root: Path, *,
                        jobs: int | None = None, progress=None) -> list[PreparedTrack]:
    """The test split of `track` under each manipulation of `protocol` alone (`Protocol.diagnostics`)."""
    prepare(track, protocol, corpus_root, prepared_root, jobs=jobs, progress=progress)
    return [prepare(track, d, corpus_root, prepared_root, jobs=jobs, progress=progress) for d in protocol.diagnostics()]


def load_prepared(track: str, protocol: str | None = None, prepared_dir: str | Path | None = None) -> PreparedTrack:
    """The `PreparedTrack` of these names (default protocol and prepared folder when None), prepared or not."""
    return PreparedTrack(load_track(track), Protocol.load(protocol or DEFAULT_PROTOCOL),
                         default_prepared_root(prepared_dir))
