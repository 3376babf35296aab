"""Noisy-input PESQ-WB and STOI of every prepared evaluation set of a track (its test split, the
cross-corpus and recorded-noise test tracks, the per-manipulation diagnostics), from the stored
16-bit files: the floor each set puts under a model.

    python scripts/score_noisy_sets.py [--track vctk-mini] [--prepared-dir DIR] [--jobs 2]

Prepare first: `bench data prepare --track vctk-mini --evaluation`.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _score(args):
    from pesq import pesq
    from pystoi import stoi

    clean, noisy = args
    return pesq(16000, clean, noisy, "wb"), stoi(clean, noisy, 16000, extended=False)


def main() -> int:
    sys.path.insert(0, str(REPO))
    from bench.data.evaluation import evaluation_sets
    from bench.corpora.root import prepared_root
    from bench.data.tracks import load_track
    from bench.protocol import DEFAULT_PROTOCOL, Protocol

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--track", default="vctk-mini")
    ap.add_argument("--protocol", default=DEFAULT_PROTOCOL)
    ap.add_argument("--prepared-dir", default=None)
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args()
    sets = evaluation_sets(load_track(args.track), Protocol.load(args.protocol), prepared_root(args.prepared_dir))
    with ProcessPoolExecutor(args.jobs) as ex:
        for s in sets:
            pt = s.prepared
            ids = pt.utt_ids("test")
            res = np.array(list(ex.map(_score, [(pt.load_clean("test", u), pt.load_noisy("test", u)) for u in ids])))
            print(f"{s.key:45s} {s.role:12s} {len(ids):4d} utt  noisy PESQ-WB {res[:, 0].mean():.3f}  "
                  f"STOI {res[:, 1].mean():.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
