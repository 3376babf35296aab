"""Re-score one metric in every results folder that ships its outputs, after the metric's version changed.

For each folder under results/ whose summary.json says ``outputs.shipped``: the metric of each shipped
output (FLAC) and of the noisy input (the prepared track) against the clean reference, written back into
per_utterance.csv (same format), summary.json's statistics (recomputed from the CSV by the results code),
``metric_versions`` and the CSV hash; then the folder is loaded again (schema, hash, every statistic).
Folders without shipped outputs keep the metric at the version they recorded. Prints, per folder, the
largest per-utterance change of the output's and of the noisy input's value and the change of the mean.

    .venv/bin/python scripts/rescore_metric.py estoi [--dry-run] [--force] [--jobs N] [RUN ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench.core.audio import read_audio
from bench.metrics.registry import METRICS, metric_versions
from bench.scoring.results import (RESULTS_DIR, iter_run_dirs, load_run, per_utterance_bytes, read_per_utterance,
                                   rel, sha256_bytes, summarize_metrics, write_json)
from bench.scoring.score import metric_pool, metric_row
from bench.corpora.root import prepared_root, resolve_data_root
from bench.data.prepare import prepare
from bench.data.prepared import PreparedTrack
from bench.data.tracks import track_version
from bench.protocol import Protocol


def prepared_of(run):
    """The prepared test set the run was scored on (prepared from the corpus if needed, as bench run does)."""
    b = run.summary["benchmark"]
    track = track_version(b["track"]["name"], b["track"]["split_id"])
    proto = None if b["protocol"]["name"] == "recorded" else Protocol.load(b["protocol"]["name"])
    pt = PreparedTrack(track, proto, prepared_root(None))
    if not pt.is_prepared:
        prepare(track, pt.protocol, resolve_data_root(None, track), pt.root)
    pt.require()
    return pt


def outputs_of(run) -> dict[str, Path]:
    return {u: run.path / run.summary["outputs"]["dir"] / f"{u}.flac" for u in run.per_utterance["utt_id"]}


def _errors(cell) -> dict:
    return json.loads(cell) if isinstance(cell, str) and cell else {}


def rescore(path: Path, metric: str, jobs: int, noisy_cache: dict, dry_run: bool) -> str:
    run = load_run(path)
    outputs = outputs_of(run)
    pt = prepared_of(run)
    ids = list(run.per_utterance["utt_id"])
    key = (str(pt.root), run.track, run.split_id)
    with metric_pool(jobs) as ex:
        futs = [ex.submit(metric_row, (u, pt.load_clean("test", u), read_audio(outputs[u])[0], (metric,), ""))
                for u in ids]
        if key not in noisy_cache:
            nf = [ex.submit(metric_row, (u, pt.load_clean("test", u), pt.load_noisy("test", u), (metric,), "noisy_"))
                  for u in ids]
            noisy_cache[key] = {f.result()["utt_id"]: f.result() for f in nf}
        fresh = {f.result()["utt_id"]: f.result() for f in futs}
    df = run.per_utterance.copy()
    noisy = noisy_cache[key]
    old, old_noisy = df[metric].to_numpy(float), df[f"noisy_{metric}"].to_numpy(float)
    df[metric] = [fresh[u][metric] for u in ids]
    df[f"noisy_{metric}"] = [noisy[u][f"noisy_{metric}"] for u in ids]
    errors = []
    for u, cell in zip(ids, df["errors"]):
        e = {k: v for k, v in _errors(cell).items() if k not in (metric, f"noisy_{metric}")}
        e.update(fresh[u]["errors"])
        e.update(noisy[u]["errors"])
        errors.append(json.dumps(e, sort_keys=True) if e else "")
    df["errors"] = errors
    raw = per_utterance_bytes(df)
    s = run.summary
    names = run.metric_names
    stats = summarize_metrics(read_per_utterance(raw), names)  # from the CSV as stored, as bench run does
    changed = [m for m in names if m != metric and stats[m] != s["metrics"][m]]
    if changed:
        raise SystemExit(f"{rel(path)}: statistics of {changed} would change; refusing")
    s["metrics"] = stats
    s["metric_versions"][metric] = metric_versions()[metric]
    s["files"]["per_utterance_sha256"] = sha256_bytes(raw)
    s["counts"]["failed_utterances"] = int(sum(1 for e in errors if e))
    d = np.abs(df[metric].to_numpy(float) - old)
    dn = np.abs(df[f"noisy_{metric}"].to_numpy(float) - old_noisy)
    dmean = abs(np.nanmean(df[metric].to_numpy(float)) - np.nanmean(old))
    if not dry_run:
        (path / s["files"]["per_utterance"]).write_bytes(raw)
        write_json(path / "summary.json", s)
        load_run(path)
    return (f"{rel(path)}: max |delta| per utterance {np.nanmax(d):.6f} (noisy input {np.nanmax(dn):.6f}), "
            f"mean {dmean:.6f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metric", choices=list(METRICS))
    ap.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="also folders already at the current version")
    ap.add_argument("runs", nargs="*", type=Path, help="only these folders (default: every one)")
    a = ap.parse_intermixed_args(argv)
    cache: dict = {}
    for path in a.runs or iter_run_dirs(RESULTS_DIR):
        run = load_run(path)
        if not (run.summary.get("outputs") or {}).get("shipped") or a.metric not in run.metric_names:
            continue
        if run.summary["metric_versions"].get(a.metric) == metric_versions()[a.metric] and not a.force:
            print(f"{rel(path)}: already at {metric_versions()[a.metric]['version']}")
            continue
        print(rescore(path, a.metric, a.jobs, cache, a.dry_run), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
