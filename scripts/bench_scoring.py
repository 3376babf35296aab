"""Scoring throughput: utterances per second of the scorer with 1 worker and with N workers.

Scores the prepared test split of a track (default: vctk-mini, 30 utterances) with an adapter
(default: `noisy`, the identity, so the time is the scorer's: reading audio, every metric on the
output *and* on the noisy input, the run folder) into a temporary results dir, once with
``--jobs 1`` and once with N metric worker processes (default: all cores), and prints a table
and the ratio. The two runs must give byte-identical per_utterance.csv files.

    python scripts/bench_scoring.py [--jobs N] [--model noisy] [--track vctk-mini] [--prepared-dir DIR]

Needs a prepared track (`bench data prepare --track vctk-mini`). Timings are wall-clock on this
machine; on a shared machine, other load changes them (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.adapters.base import get_adapter  # noqa: E402
from bench.data.prepared import PreparedTrack  # noqa: E402
from bench.corpora.root import prepared_root  # noqa: E402
from bench.data.tracks import load_track  # noqa: E402
from bench.core.env import cpu_model  # noqa: E402
from bench.protocol import DEFAULT_PROTOCOL, Protocol  # noqa: E402
from bench.scoring.score import score  # noqa: E402


def time_scoring(found, pt: PreparedTrack, jobs: int, split: str) -> tuple[float, bytes]:
    a = found.adapter
    model = a.build(**a.resolved_config())
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        t0 = time.perf_counter()
        out = score(found, model, pt, Path(tmp) / "run", run_id="bench", config={}, budget={"trained": False},
                    split=split, jobs=jobs, device="cpu")
        wall = time.perf_counter() - t0
        return wall, (out / "per_utterance.csv").read_bytes()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count(), help="workers of the parallel run (default: all cores)")
    ap.add_argument("--model", default="noisy")
    ap.add_argument("--track", default="vctk-mini")
    ap.add_argument("--protocol", default=DEFAULT_PROTOCOL)
    ap.add_argument("--split", default="test", choices=["test", "valid"])
    ap.add_argument("--prepared-dir", default=None, help="else $BENCH_PREPARED_DIR or <repo>/prepared")
    args = ap.parse_args(argv)

    pt = PreparedTrack(load_track(args.track), Protocol.load(args.protocol), prepared_root(args.prepared_dir))
    if not pt.is_prepared:
        print(f"track {args.track} is not prepared in {pt.root}: run `bench data prepare --track {args.track}`",
              file=sys.stderr)
        return 2
    found = get_adapter(args.model)
    ids = pt.utt_ids(args.split)
    audio = sum(len(pt.load_clean(args.split, u)) for u in ids) / 16000

    print(f"scoring {len(ids)} {args.split} utterances ({audio:.1f} s of audio) of {args.track} with `{args.model}`")
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; load average before: "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    rows = []
    csvs = []
    for jobs in dict.fromkeys([1, args.jobs]):
        wall, csv = time_scoring(found, pt, jobs, args.split)
        csvs.append(csv)
        rows.append((jobs, wall, len(ids) / wall, audio / wall))
    base = rows[0][1]
    print()
    print(f"{'jobs':>5} | {'wall (s)':>9} | {'utt/s':>7} | {'audio s / s':>11} | {'speed-up':>8}")
    print(f"{'-' * 5}-+-{'-' * 9}-+-{'-' * 7}-+-{'-' * 11}-+-{'-' * 8}")
    for jobs, wall, ups, aps in rows:
        print(f"{jobs:>5} | {wall:>9.2f} | {ups:>7.3f} | {aps:>11.2f} | {base / wall:>7.2f}x")
    print()
    if len(rows) > 1:
        print(f"ratio (jobs={rows[-1][0]} / jobs=1 throughput): {rows[-1][2] / rows[0][2]:.2f}")
    same = all(c == csvs[0] for c in csvs)
    print(f"per_utterance.csv identical across job counts: {'yes' if same else 'NO'}")
    print("load average after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
