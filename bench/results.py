"""The results format: one folder per run, validated by a JSON schema, and the checks the
leaderboard applies before trusting a run.

    results/<track>/<model>/<run-id>/
        summary.json         means, 95% bootstrap CIs, improvement over the noisy input, counts,
                             speed, budget, protocol + split hashes (schema: bench/schema/summary.schema.json)
        per_utterance.csv    one row per test utterance: every metric for the enhanced and the noisy input
        config.json          the resolved model / training / scoring config
        env.json             git commit + dirty flag, packages, CPU/GPU, threads, date, wall time
        enhanced/            a few enhanced utterances (FLAC) for listening

A run is trusted only if its summary validates, ``per_utterance.csv`` has the recorded SHA-256,
the summary's means agree with a recomputation from ``per_utterance.csv``, its protocol and split
hashes equal the current benchmark's, and it scored exactly the track's test utterances.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from bench import REPO_ROOT
from bench.audio import atomic_write_bytes
from bench.errors import ResultsError

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "summary.schema.json"
SCHEMA_VERSION = 1
RESULTS_DIR = REPO_ROOT / "results"
CI_CONFIDENCE = 0.95
CI_RESAMPLES = 10000
CI_SEED = 0
#: recomputed means must match the summary to this absolute tolerance
RECOMPUTE_TOL = 1e-6


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def run_dir(track: str, model: str, run_id: str, root: Path | None = None) -> Path:
    return Path(root or RESULTS_DIR) / track / model / run_id


def dump_json(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(Path(path), dump_json(obj))


def _clean(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def summarize_metrics(df: pd.DataFrame, metric_names: list[str]) -> dict:
    """Mean, 95% bootstrap CI, failures, and the paired improvement over the noisy input, per metric."""
    from bench.stats import bootstrap_ci

    out = {}
    for m in metric_names:
        vals = df[m].to_numpy(dtype=float)
        noisy = df[f"noisy_{m}"].to_numpy(dtype=float)
        mean, lo, hi = bootstrap_ci(vals, n_resamples=CI_RESAMPLES, confidence=CI_CONFIDENCE, seed=CI_SEED)
        paired = ~(np.isnan(vals) | np.isnan(noisy))
        d_mean, d_lo, d_hi = bootstrap_ci(vals[paired] - noisy[paired], n_resamples=CI_RESAMPLES,
                                          confidence=CI_CONFIDENCE, seed=CI_SEED)
        out[m] = {"mean": _clean(mean), "ci_low": _clean(lo), "ci_high": _clean(hi),
                  "n": int(np.sum(~np.isnan(vals))), "failures": int(np.sum(np.isnan(vals))),
                  "noisy_mean": _clean(np.nanmean(noisy) if np.any(~np.isnan(noisy)) else None),
                  "delta": _clean(d_mean), "delta_ci_low": _clean(d_lo), "delta_ci_high": _clean(d_hi)}
    return out


def per_utterance_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, float_format="%.6f", lineterminator="\n").encode()


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _format_checker():
    import datetime

    import jsonschema

    fc = jsonschema.FormatChecker()
    if "date-time" not in fc.checkers:  # jsonschema checks it only with the optional rfc3339-validator

        @fc.checks("date-time", raises=ValueError)
        def _date_time(value) -> bool:  # RFC 3339: full date, time and UTC offset
            if not isinstance(value, str):
                return True
            return "T" in value.upper() and datetime.datetime.fromisoformat(value).tzinfo is not None

    return fc


def validate_summary(summary: dict, source: str = "summary.json") -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema(), format_checker=_format_checker())
    errors = sorted(validator.iter_errors(summary), key=lambda e: list(e.path))
    if errors:
        msgs = [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5]]
        raise ResultsError(f"{source} does not validate against the results schema v{SCHEMA_VERSION}:\n  " + "\n  ".join(msgs))


@dataclass
class Run:
    path: Path
    summary: dict
    per_utterance: pd.DataFrame

    @property
    def model(self) -> str:
        return self.summary["model"]["name"]

    @property
    def track(self) -> str:
        return self.summary["benchmark"]["track"]["name"]

    @property
    def run_id(self) -> str:
        return self.summary["run_id"]


def load_run(path: Path) -> Run:
    """Load a run folder; raises ResultsError naming the file and the problem if it is not valid."""
    path = Path(path)
    spath = path / "summary.json"
    if not spath.exists():
        raise ResultsError(f"{path}: not a run folder (no summary.json)")
    try:
        summary = json.loads(spath.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{spath}: not valid JSON ({exc})") from None
    validate_summary(summary, str(spath))
    csv_path = path / summary["files"]["per_utterance"]
    if not csv_path.exists():
        raise ResultsError(f"{csv_path}: missing")
    raw = csv_path.read_bytes()
    if sha256_bytes(raw) != summary["files"]["per_utterance_sha256"]:
        raise ResultsError(f"{csv_path}: SHA-256 differs from the one recorded in summary.json (edited after scoring?)")
    df = pd.read_csv(csv_path, dtype={"utt_id": str})
    run = Run(path, summary, df)
    _check_recompute(run)
    return run


def _check_recompute(run: Run) -> None:
    for m, s in run.summary["metrics"].items():
        if m not in run.per_utterance.columns:
            raise ResultsError(f"{run.path}: per_utterance.csv has no column {m!r} listed in summary.json")
        vals = run.per_utterance[m].to_numpy(dtype=float)
        mean = float(np.nanmean(vals)) if np.any(~np.isnan(vals)) else None
        if (mean is None) != (s["mean"] is None) or (mean is not None and abs(mean - s["mean"]) > RECOMPUTE_TOL):
            raise ResultsError(f"{run.path}/summary.json: mean {m} = {s['mean']} but per_utterance.csv gives {mean}")
    n = len(run.per_utterance)
    if n != run.summary["counts"]["utterances"]:
        raise ResultsError(f"{run.path}: summary counts {run.summary['counts']['utterances']} utterances, "
                           f"per_utterance.csv has {n}")


def check_against_benchmark(run: Run, *, protocol, track_record: dict, test_ids: list[str] | None) -> None:
    """Refuse a run scored under another protocol, split or utterance set than the current benchmark."""
    b = run.summary["benchmark"]
    if b["protocol"]["sha256"] != protocol.sha256 or b["protocol"]["name"] != protocol.name:
        raise ResultsError(f"{run.path}: scored under protocol {b['protocol']['name']} ({b['protocol']['sha256'][:12]}), "
                           f"the benchmark is {protocol.name} ({protocol.sha256[:12]})",
                           hint="re-score the model with the current protocol")
    if b["track"]["manifest_sha256"] != track_record["manifest_sha256"] or b["track"]["split_id"] != track_record["split_id"]:
        raise ResultsError(f"{run.path}: scored on split {b['track']['split_id']} "
                           f"(manifest {b['track']['manifest_sha256'][:12]}), "
                           f"the track is {track_record['split_id']} (manifest {track_record['manifest_sha256'][:12]})",
                           hint="re-score the model on the current split")
    if test_ids is not None and b["split"] == "test":
        got = set(run.per_utterance["utt_id"])
        want = set(test_ids)
        if got != want:
            raise ResultsError(f"{run.path}: scored {len(got)} utterances, the test split has {len(want)} "
                               f"({len(want - got)} missing, {len(got - want)} unexpected)")


def iter_run_dirs(root: Path | None = None):
    root = Path(root or RESULTS_DIR)
    if not root.exists():
        return
    for summary in sorted(root.glob("*/*/*/summary.json")):
        yield summary.parent


def find_run(spec: str, track: str | None = None, root: Path | None = None) -> Path:
    """Resolve a run given as a folder path, `model` (latest run) or `model@run-id`."""
    p = Path(spec)
    if (p / "summary.json").exists():
        return p
    model, _, run_id = spec.partition("@")
    cands = [d for d in iter_run_dirs(root) if d.parent.name == model and (track is None or d.parent.parent.name == track)]
    if run_id:
        cands = [d for d in cands if d.name == run_id]
    if not cands:
        raise ResultsError(f"no run found for {spec!r}" + (f" on track {track}" if track else ""),
                           hint="give a run folder, MODEL or MODEL@RUN_ID; `ls results/<track>/<model>/` lists runs")
    return sorted(cands, key=lambda d: d.name)[-1]
