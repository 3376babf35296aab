"""Write the track specs that are derived from the shared corpora's metadata by fixed rules
(`bench.data.selection`): vctk-mini v2, so762-test, librispeech-test-other, vbdemand-sample.

    python scripts/make_tracks.py [--data-root ../shared/data] [--check]

With --check nothing is written; exit 1 if a committed spec differs from what the rules give.
Run once, when a track version is made; then `bench data freeze --track <name>` writes its manifest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def specs(data: Path) -> dict[str, dict]:
    sys.path.insert(0, str(REPO))
    from bench.data.selection import (librispeech_test_other, librispeech_train, librispeech_valid,
                                      read_corpus_manifest, so762_test, so762_train, so762_valid)
    from bench.data.tracks import TRACK_DIR

    ls = read_corpus_manifest(data / "librispeech-mini" / "manifest.csv")
    so = read_corpus_manifest(data / "speechocean762-mini" / "manifest.csv")
    out = {}
    v2 = json.loads((TRACK_DIR / "vctk-mini.json").read_text())
    v2["splits"]["valid"]["librispeech"]["speakers"] = librispeech_valid(ls)
    v2["splits"]["train"]["librispeech"]["speakers"] = librispeech_train(ls)
    v2["splits"]["valid"]["speechocean762"]["speakers"] = so762_valid(so)
    v2["splits"]["train"]["speechocean762"]["speakers"] = so762_train(so)
    out["vctk-mini"] = v2
    so_t = json.loads((TRACK_DIR / "so762-test.json").read_text())
    so_t["splits"]["test"]["speakers"] = so762_test(so)
    out["so762-test"] = so_t
    lt = json.loads((TRACK_DIR / "librispeech-test-other.json").read_text())
    lt["splits"]["test"]["speakers"] = librispeech_test_other(ls)
    out["librispeech-test-other"] = lt
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    from bench.data.tracks import TRACK_DIR

    differs = []
    for name, spec in specs(Path(args.data_root)).items():
        path = TRACK_DIR / f"{name}.json"
        text = json.dumps(spec, indent=2) + "\n"
        if path.read_text() != text:
            differs.append(name)
            if not args.check:
                path.write_text(text)
    print(("differ from the rules: " if args.check else "rewrote: ") + (", ".join(differs) or "nothing"))
    return 1 if args.check and differs else 0


if __name__ == "__main__":
    raise SystemExit(main())
