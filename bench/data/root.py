"""Where the corpora live and where prepared (16 kHz, noised) audio goes.

Data root resolution, first match wins:
1. ``--data-root`` on the command line;
2. the environment variable ``BENCH_DATA_ROOT``;
3. ``../shared/data`` beside the repository root, when present;
4. the user cache dir (``platformdirs.user_cache_dir("vctk-denoise-bench")/data``), where
   ``bench data download`` puts the corpus.

A data root holds one folder per corpus (``vctk-mini/``, ``VCTK-Corpus-0.92/``); a path that
is itself a corpus folder (it has ``wav48/`` or ``wav48_silence_trimmed/``) also works.
Prepared audio goes to ``--prepared-dir``, ``BENCH_PREPARED_DIR`` or ``<repo>/prepared``.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench import REPO_ROOT
from bench.errors import DataError

ENV_DATA_ROOT = "BENCH_DATA_ROOT"
ENV_PREPARED = "BENCH_PREPARED_DIR"
LAYOUT_DIRS = ("wav48_silence_trimmed", "wav48")


def user_cache_data() -> Path:
    from platformdirs import user_cache_dir

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


def is_corpus_dir(path: Path) -> bool:
    return any((path / d).is_dir() for d in LAYOUT_DIRS)


def resolve_data_root(cli_root: str | Path | None, track) -> Path:
    """The corpus folder of `track` (a `bench.data.tracks.Track`)."""
    tried = []
    for origin, root in candidate_roots(cli_root):
        for cand in (root / track.corpus_dir, root):
            if cand.is_dir() and is_corpus_dir(cand):
                return cand
        tried.append(f"{origin}: {root / track.corpus_dir}")
        if origin in ("--data-root", ENV_DATA_ROOT):
            # an explicit choice that does not hold the corpus is an error, not a fall-through
            raise DataError(f"no {track.name} corpus under {root} (from {origin}): expected {track.corpus_dir}/ "
                            f"with wav48_silence_trimmed/ (VCTK 0.92) or wav48/ (VCTK 0.80)",
                            hint=track.get_data_command())
    raise DataError(f"no data found for track {track.name!r}; looked in:\n    " + "\n    ".join(tried),
                    hint=track.get_data_command())


def prepared_root(cli_dir: str | Path | None = None) -> Path:
    if cli_dir:
        return Path(cli_dir).expanduser()
    if os.environ.get(ENV_PREPARED):
        return Path(os.environ[ENV_PREPARED]).expanduser()
    return REPO_ROOT / "prepared"
