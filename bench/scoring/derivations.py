"""Which results folders this code has derived before, so that a check of the board need not validate and
recompute what it derived from the same bytes (`load_run`'s `derivations`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.core.files import CacheFolder
from bench.metrics import stats


class Derivations:
    """The summaries already derived from their files by this code: ``.cache/derived-<code key>/<SHA-256 of
    the bytes of summary.json and per_utterance.csv>``, an empty file written once the summary validated
    against its schema and every statistic matched its recomputation. `load_run` given one skips those two
    steps for bytes it derived before (every other check runs on every load); other bytes, or other code
    (this module, bench/scoring/results.py, the statistics, the schemas, numpy, pandas, jsonschema) are
    derived in full."""

    def __init__(self, root: Path | None = None):
        here = Path(__file__).parent
        code = [__file__, here / "results.py", stats.__file__, *sorted((here / "schema").glob("*.json"))]
        self.cache = CacheFolder("derived", code, ("numpy", "pandas", "jsonschema"), root)
        self.folder = self.cache.folder

    def entry(self, summary_path: Path, summary) -> Path | None:
        """The entry of a summary.json and the per_utterance.csv it names (None: it names no plain file of
        its folder, which `load_run` refuses after validating the summary; nothing else is read)."""
        try:
            name = summary["files"]["per_utterance"]
            csv = summary_path.parent / name
            if not isinstance(name, str) or "/" in name or csv.is_symlink() or not csv.is_file():
                return None
            files = (summary_path.read_bytes(), csv.read_bytes())
        except (OSError, TypeError, KeyError, ValueError):
            return None
        return self.folder / hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in files)).hexdigest()

    def note(self, entry: Path) -> None:
        self.cache.write(entry.name, b"", fsync=False)
