"""The evaluation sets of a benchmark track, main set first: its own test split (``main``), the test-only
tracks it lists (``cross-corpus``, or ``recorded`` for recorded noise) and, with ``"diagnostics": true``,
its test split under each manipulation of the protocol alone (``diagnostic``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.corpora.root import resolve_data_root
from bench.data.prepare import prepare
from bench.data.prepared import PreparedTrack
from bench.data.tracks import Track, load_track

ROLES = ("main", "cross-corpus", "recorded", "diagnostic")


@dataclass(frozen=True)
class EvalSet:
    key: str                 # unique, folder-safe: the track name, or <track>.<derived protocol> for a diagnostic
    role: str                # one of ROLES
    prepared: PreparedTrack
    split: str = "test"

    def record(self) -> dict:
        return {"key": self.key, "role": self.role, "split": self.split, **self.prepared.record()}


def evaluation_sets(track: Track, protocol, prepared_root: Path, *, diagnostics: bool = True) -> list[EvalSet]:
    """Every evaluation set of `track` under `protocol`, main set first (none is prepared by this call)."""
    root = Path(prepared_root)
    sets = [EvalSet(track.name, "main", PreparedTrack(track, protocol, root))]
    for name in track.evaluation_tracks:
        t = load_track(name)
        sets.append(EvalSet(name, "recorded" if t.recorded else "cross-corpus", PreparedTrack(t, protocol, root)))
    if diagnostics and track.diagnostics:
        sets += [EvalSet(f"{track.name}.{d.name}", "diagnostic", PreparedTrack(track, d, root))
                 for d in protocol.diagnostics()]
    return sets


def prepare_evaluation(track: Track, protocol, data_root, prepared_root: Path, *, jobs: int | None = None,
                       progress=None, only_diagnostics: bool = False) -> list[EvalSet]:
    """Prepare every evaluation set of `track`, main set first (each track's corpora looked up from
    ``--data-root`` `data_root`); returns them. `only_diagnostics`: the main set and the diagnostics."""
    sets = evaluation_sets(track, protocol, prepared_root)
    if only_diagnostics:
        sets = [s for s in sets if s.role in ("main", "diagnostic")]
    roots: dict[str, object] = {}
    for s in sets:
        t = s.prepared.track
        if t.name not in roots:
            roots[t.name] = resolve_data_root(data_root, t)
        prepare(t, s.prepared.protocol, roots[t.name], prepared_root, jobs=jobs, progress=progress)
    return sets
