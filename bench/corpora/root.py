"""Where the corpora live (the data root: ``--data-root``, ``$BENCH_DATA_ROOT``, ``../shared/data``, the user
cache dir, first match first) and where prepared audio goes; docs/tracks.md, "the data root"."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

from bench import REPO_ROOT
from bench.core.errors import DataError

ENV_DATA_ROOT = "BENCH_DATA_ROOT"
ENV_PREPARED = "BENCH_PREPARED_DIR"


def user_cache_data() -> Path:
    return Path(user_cache_dir("vctk-denoise-bench")) / "data"


def candidate_roots(cli_root: str | Path | None) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    if cli_root:
        out.append(("--data-root", Path(cli_root).expanduser()))
    if os.environ.get(ENV_DATA_ROOT):
        out.append((ENV_DATA_ROOT, Path(os.environ[ENV_DATA_ROOT]).expanduser()))
    out.append(("../shared/data", REPO_ROOT.parent / "shared" / "data"))
    out.append(("user cache", user_cache_data()))
    return out


class CorpusRoots(dict):
    """Corpus key -> corpus folder, for a track drawn from several corpora."""

    def __str__(self) -> str:
        return ", ".join(str(p) for p in self.values())


def _find(cli_root, track, key: str) -> Path:
    sub, markers = track.corpus_dir_of(key), track.markers_of(key)
    single = len(track.corpora) == 1
    tried = []
    for origin, root in candidate_roots(cli_root):
        for cand in ((root / sub, root) if single else (root / sub,)):
            if cand.is_dir() and any((cand / d).is_dir() for d in markers):
                return cand
        tried.append(f"{origin}: {root / sub}")
        if origin in ("--data-root", ENV_DATA_ROOT):
            # an explicit choice that does not hold the corpus is an error, not a fall-through
            raise DataError(f"no {track.name} corpus under {root} (from {origin}): expected {sub}/ with "
                            + _expected(markers), hint=track.get_data_command())
    raise DataError(f"no data found for track {track.name!r}" + (f" (corpus {sub})" if not single else "")
                    + "; looked in:\n    " + "\n    ".join(tried), hint=track.get_data_command())


def _expected(markers: list[str]) -> str:
    names = {"wav48_silence_trimmed": "wav48_silence_trimmed/ (VCTK 0.92)", "wav48": "wav48/ (VCTK 0.80)"}
    return " or ".join(names.get(m, f"{m}/") for m in markers)


def resolve_data_root(cli_root: str | Path | None, track):
    """The corpus folder of a one-corpus `track`, else a `CorpusRoots` of each corpus's folder."""
    if len(track.corpora) == 1:
        return _find(cli_root, track, track.primary_corpus)
    return CorpusRoots({key: _find(cli_root, track, key) for key in track.corpora})


def prepared_root(cli_dir: str | Path | None = None) -> Path:
    if cli_dir:
        return Path(cli_dir).expanduser()
    if os.environ.get(ENV_PREPARED):
        return Path(os.environ[ENV_PREPARED]).expanduser()
    return REPO_ROOT / "prepared"
