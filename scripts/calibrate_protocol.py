"""Calibrate a protocol spec on real speech: noisy-input PESQ-WB / STOI, overall and per manipulation.

    python scripts/calibrate_protocol.py [--protocol stft-v1] [--ablate] [--set op.param=value ...]

Uses the vctk-mini test speakers (p232, p257) from the resolved data root. Prints means; with
--ablate also the score with each manipulation alone (`Protocol.only`: the draws it has in the full
protocol, i.e. the diagnostic sets `bench data prepare --diagnostics` materializes).
"""

from __future__ import annotations

import argparse
import copy
import json
from concurrent.futures import ProcessPoolExecutor

import numpy as np


def _score(args):
    spec, path, utt, only = args
    from pesq import pesq
    from pystoi import stoi

    from bench.core.audio import load_16k
    from bench.protocol import Protocol

    p = Protocol.from_spec(spec)
    if only is not None:  # manipulation `only` alone, with the random draws it has in the full protocol
        p = p.only(only)
    x = load_16k(path)
    y = p.apply(x, utt)
    return pesq(16000, x, y, "wb"), stoi(x, y, 16000, extended=False)


def evaluate(spec, items, jobs, only=None):
    with ProcessPoolExecutor(jobs) as ex:
        res = list(ex.map(_score, [(spec, p, u, only) for u, p in items]))
    arr = np.array(res)
    return arr[:, 0].mean(), arr[:, 1].mean()


def main():
    from bench.corpora.root import resolve_data_root
    from bench.data.tracks import load_track
    from bench.protocol import Protocol

    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", default="stft-v1")
    ap.add_argument("--ablate", action="store_true")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--set", nargs="*", default=[], help="op.param=json_value (first op with that name)")
    args = ap.parse_args()
    spec = copy.deepcopy(Protocol.load(args.protocol).spec)
    for s in args.set:
        key, val = s.split("=", 1)
        op, param = key.split(".")
        step = next(m for m in spec["manipulations"] if m["op"] == op)
        step[param] = json.loads(val)
    track = load_track("vctk-mini")
    root = resolve_data_root(None, track)
    items = [(u.utt_id, str(track.source_path(root, u))) for u in track.utterances(split="test")]
    pq, st = evaluate(spec, items, args.jobs)
    print(f"all manipulations: PESQ-WB {pq:.3f}  STOI {st:.3f}  ({len(items)} utterances)")
    if args.ablate:
        for i, m in enumerate(spec["manipulations"]):
            pq, st = evaluate(spec, items, args.jobs, only=i)
            print(f"only {m['op']:>15}: PESQ-WB {pq:.3f}  STOI {st:.3f}")


if __name__ == "__main__":
    main()
