"""Print what docs/tracks.md reports about each track: utterances, minutes and speakers per split and
corpus, and for a track with a sampling rule the resulting share of training segments per corpus and
the largest speaker shares (from the committed manifests only; no audio is read).

    python scripts/track_stats.py [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(REPO))
    from bench.data.sampling import shares
    from bench.data.tracks import all_tracks, archived_split_ids, load_archived, load_track

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"), help="for age/gender metadata")
    args = ap.parse_args()
    meta = {}
    for corpus in ("speechocean762-mini", "librispeech-mini"):
        path = Path(args.data_root) / corpus / "manifest.csv"
        if path.exists():
            meta.update({r["utt_id"]: r for r in csv.DictReader(open(path, newline=""))})
    tracks = [load_archived(s) for s in archived_split_ids()] + [load_track(n) for n in all_tracks()]
    for t in tracks:
        if not t.frozen:
            print(f"== {t.split_id}: not frozen")
            continue
        rows = t.utterances()
        print(f"== {t.split_id} ({'archived' if t.archived else 'current'}; {t.manifest_path.name}, "
              f"sha256 {t.record()['manifest_sha256'][:16]})")
        agg = defaultdict(lambda: [0, 0.0, set()])
        for r in rows:
            for key in ((r.split, r.corpus or "-"), (r.split, "all")):
                agg[key][0] += 1
                agg[key][1] += r.seconds
                agg[key][2].add(r.speaker)
        for (split, corpus), (n, sec, spk) in sorted(agg.items()):
            print(f"   {split:5s} {corpus:15s} {n:5d} utt {sec / 60:6.2f} min {len(spk):4d} speakers")
        if meta and all(r.utt_id in meta for r in rows):
            m = [meta[r.utt_id] for r in rows]
            ages = Counter("child (<18)" if int(x["age"]) < 18 else "adult" for x in m if x.get("age"))
            print(f"   gender {dict(Counter(x['gender'] for x in m))}" + (f", age {dict(ages)}" if ages else "")
                  + f", utterance length {min(r.seconds for r in rows):.2f}-{max(r.seconds for r in rows):.2f} s")
        if t.sampling:
            train = t.utterances(split="train")
            s = shares(t.sampling_weights(), train)
            print("   sampling: corpus shares " + ", ".join(f"{k} {v:.3f}" for k, v in s["corpus"].items())
                  + f"; largest speaker {s['max_speaker']} {s['max_speaker_share']:.4f}")
            top = sorted(s["speaker"].items(), key=lambda kv: -kv[1])[:6]
            print("   largest speaker shares: " + ", ".join(f"{k} {v:.4f}" for k, v in top))
            for c in sorted({r.corpus for r in train}):
                v = sorted(s["speaker"][spk] for spk in {r.speaker for r in train if r.corpus == c})
                print(f"   {c}: {len(v)} speakers, share per speaker min {v[0]:.4f} median {v[len(v) // 2]:.4f} "
                      f"max {v[-1]:.4f}")
            total = sum(r.seconds for r in train)
            by_c, by_s = Counter(), Counter()
            for r in train:
                by_c[r.corpus] += r.seconds / total
                by_s[r.speaker] += r.seconds / total
            corpus_txt = ", ".join(f"{k} {v:.3f}" for k, v in sorted(by_c.items()))
            print(f"   without the rule (by length): corpus {corpus_txt}"
                  + "; largest speaker " + ", ".join(f"{k} {v:.4f}" for k, v in by_s.most_common(2)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
