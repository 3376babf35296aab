"""The evidence of a run and how a reader checks it: `bench verify`.

What a run ships (bench/scoring/results.py has the layout): every folder's ``per_utterance.csv`` with the
SHA-256 of each output's 16-bit samples; the ranked set's folder also the outputs themselves (FLAC);
the run's home folder its weights (safetensors, bench/scoring/weights.py) where they fit.

``bench verify RUN`` (or ``--all``) checks, per results folder:

- ``--fast``: the folder loads (schema, CSV hash, every statistic recomputed), each shipped output
  exists and hashes to its ``output_sha256``, and shipped weights hash to the recorded SHA-256;
- default: also re-scores every shipped output with the recorded metrics and compares each
  per-utterance value with `RESCORE_TOL` (CPUs differ in the last bits of PESQ's and STOI's float code);
- ``--reenhance``: also rebuilds the model from its config and shipped weights (or its code, for a
  training-free adapter) and enhances the test set again. Where the folder ships its outputs (the ranked
  set), each re-enhanced output is compared with the shipped one, whose scores were just re-derived: the
  difference must stay `REENHANCE_WAVEFORM_DB` below the output (float16 weights and other CPUs change
  outputs by a few 16-bit steps; a different model or a forged output is tens of dB away). Elsewhere the
  re-enhanced outputs are re-scored and compared with `REENHANCE_TOL`. With ``--all`` only the folders
  that ship outputs are re-enhanced.
"""

from __future__ import annotations

import copy
import json
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench.adapters.base import build_model, get_adapter
from bench.corpora.root import prepared_root as default_prepared_root, resolve_data_root
from bench.data.prepare import prepare
from bench.data.prepared import PreparedTrack
from bench.data.tracks import track_version
from bench.metrics.registry import METRICS
from bench.protocol import Protocol
from bench.scoring.results import RESULTS_DIR, Run, rel, weights_file
from bench.scoring.score import enhance_one, metric_pool, metric_row
from bench.scoring.weights import load_into, read_weights
from bench.verify import derived
from bench.verify.files import Check, verify_files
from bench.verify.tolerances import FP16_METRICS, REENHANCE_TOL, REENHANCE_WAVEFORM_DB, RESCORE_TOL


def _tol(table: dict, metric: str):
    return table.get(metric, table["default"])


@contextmanager
def workers(jobs: int | Executor | None):
    """Metric workers: `jobs` new ones, or the pool passed in their place (`bench verify` shares one)."""
    if isinstance(jobs, Executor):
        yield jobs
    else:
        with metric_pool(jobs) as ex:
            yield ex


def _submit_rows(ex: Executor, items: list[tuple[str, np.ndarray, np.ndarray]], names: list[str]) -> list[Future]:
    return [ex.submit(metric_row, (u, c, y, tuple(names), "")) for u, c, y in items]


def _rows(futs: list[Future]) -> dict[str, dict]:
    return {f.result()["utt_id"]: f.result() for f in futs}


def _rescore_rows(items: list[tuple[str, np.ndarray, np.ndarray]], names: list[str], jobs: int | Executor | None):
    with workers(jobs) as ex:
        return _rows(_submit_rows(ex, items, names))


def compare_scores(run: Run, fresh: dict[str, dict], tol: dict, check: Check, what: str, *, means: bool) -> None:
    df = run.per_utterance.set_index("utt_id")
    for m in run.metric_names:
        if METRICS[m].unavailable:   # a mismatch not observed is not reported: say why it was not checked
            check.notes.append(f"{what}: {m} not re-scored: {METRICS[m].unavailable}")
            continue
        recorded = (run.summary.get("metric_versions") or {}).get(m, {}).get("version")
        if recorded != METRICS[m].version:
            check.notes.append(f"{what}: {m} recorded at version {recorded!r}, computed now at {METRICS[m].version!r}")
        diffs = []
        for utt, row in fresh.items():
            a, b = float(df.loc[utt, m]), float(row[m])
            if np.isnan(a) and np.isnan(b):
                continue
            diffs.append(abs(a - b) if not (np.isnan(a) or np.isnan(b)) else np.inf)
        per_utt = _tol(tol, m)[0] if means else _tol(tol, m)
        worst = max(diffs, default=0.0)
        if worst > per_utt:
            check.problems.append(f"{what}: {m} differs by up to {worst:.4g} per utterance (tolerance {per_utt})")
        if means and diffs:
            d = abs(np.nanmean([float(df.loc[u, m]) for u in fresh]) - np.nanmean([float(r[m]) for r in fresh.values()]))
            if d > _tol(tol, m)[1]:
                check.problems.append(f"{what}: mean {m} differs by {d:.4g} (tolerance {_tol(tol, m)[1]})")
        check.notes.append(f"{what}: {m} max |diff| {worst:.2g}")


def verify_run(path: Path, *, results_root: Path | None = None, mode: str = "rescore",
               jobs: int | Executor | None = None, prepared_root: Path | None = None, track=None,
               reenhance_unshipped: bool = True, adapters: dict | None = None) -> Check:
    """Check one results folder; `mode` is ``fast``, ``rescore`` or ``reenhance`` (`reenhance_unshipped`:
    also a folder that ships no outputs). `jobs`: metric workers, or a pool to use. `track`: the Track the
    run was scored on when it is not a registered one (tests)."""
    run, check, audio = verify_files(path, Path(results_root or RESULTS_DIR), adapters)
    if run is None or mode == "fast" or not check.ok:
        return check
    redo = mode == "reenhance" and bool(audio or reenhance_unshipped)
    if not (audio or redo):
        return check
    pt = _prepared_of(run, prepared_root, track)
    items = [(u, pt.load_clean("test", u), y) for u, y in audio.items()]
    with workers(jobs) as ex:
        pending = _submit_rows(ex, items, run.metric_names)
        fresh = reenhanced(run, results_root, pt, check) if redo else None   # while the workers re-score
        if items:
            compare_scores(run, _rows(pending), RESCORE_TOL, check, "re-scored outputs", means=False)
            if problem := derived.scale_problem(run, [(c, y) for _, c, y in items]):
                check.problems.append(f"shipped outputs: {problem}")
        if fresh is not None:
            judge_reenhanced(run, fresh, audio, check, ex)
    return check


def _prepared_of(run: Run, prepared_root: Path | None, track=None):
    b = run.summary["benchmark"]
    track = track or track_version(b["track"]["name"], b["track"]["split_id"])
    proto = None if b["protocol"]["name"] == "recorded" else Protocol.load(b["protocol"]["name"])
    pt = PreparedTrack(track, proto, prepared_root or default_prepared_root(None))
    if not pt.is_prepared:   # as `bench run` does: prepare from the corpus (idempotent)
        prepare(track, pt.protocol, resolve_data_root(None, track), pt.root)
    pt.require()
    return pt


def reenhanced(run: Run, results_root: Path, pt, check: Check) -> list[tuple[str, np.ndarray, np.ndarray]] | None:
    """(utterance, clean, output) of the run's model rebuilt from its record, on its test set (None, with a
    note, when a trained run's weights are not in the repository)."""
    found = get_adapter(run.model)
    model = model_of(run, results_root, found)
    if model is None:
        check.notes.append("not re-enhanced: the weights are not in the repository")
        return None
    mode = (run.summary["benchmark"].get("evaluation") or {}).get("mode", "offline")
    items = []
    for u in run.per_utterance["utt_id"]:
        clean = pt.load_clean("test", u)
        items.append((u, clean, enhance_one(found, model, pt.load_noisy("test", u), clean, "cpu", mode)))
    return items


def judge_reenhanced(run: Run, items, shipped: dict[str, np.ndarray], check: Check, jobs: int | Executor | None):
    """Re-enhanced outputs against the shipped ones by waveform, or, with none shipped, re-scored."""
    if shipped:
        compare_waveforms({u: y for u, _, y in items}, shipped, check)
    else:
        compare_scores(run, _rescore_rows(items, run.metric_names, jobs), REENHANCE_TOL, check, "re-enhanced",
                       means=True)
    if problem := derived.scale_problem(run, [(c, y) for _, c, y in items]):
        check.problems.append(f"re-enhanced: {problem}")


def waveform_db(shipped: np.ndarray, fresh: np.ndarray) -> float:
    """Energy of `shipped` over the energy of `fresh - shipped`, in dB (inf when identical)."""
    if shipped.shape != fresh.shape:
        return -np.inf
    d = np.sum((fresh.astype(np.float64) - shipped) ** 2)
    return np.inf if d == 0 else float(10 * np.log10(max(np.sum(shipped.astype(np.float64) ** 2), 1e-20) / d))


def compare_waveforms(fresh: dict[str, np.ndarray], shipped: dict[str, np.ndarray], check: Check) -> None:
    """Each re-enhanced output against the shipped one (`REENHANCE_WAVEFORM_DB`)."""
    db = {u: waveform_db(shipped[u], y) for u, y in fresh.items() if u in shipped}
    worst = min(db, key=db.get)
    if db[worst] < REENHANCE_WAVEFORM_DB:
        n = sum(v < REENHANCE_WAVEFORM_DB for v in db.values())
        check.problems.append(f"re-enhanced: {n} of {len(db)} outputs differ from the shipped ones (worst {worst}: "
                              f"{db[worst]:.1f} dB below the output, tolerance {REENHANCE_WAVEFORM_DB:g} dB)")
    check.notes.append(f"re-enhanced: outputs within {db[worst]:.1f} dB of the shipped ones")


def model_of(run: Run, results_root: Path, found=None):
    """The run's model: built from its config.json, with its shipped weights (None when a trained run's
    weights are not shipped)."""
    found = found or get_adapter(run.model)
    config = json.loads((run.path / run.summary["files"]["config"]).read_text())
    model = build_model(found.adapter, config["model_config"])
    if run.summary["model"]["trainable"]:
        wp = weights_file(run, results_root)
        if wp is None:
            return None
        tensors, _ = read_weights(wp)
        load_into(model, tensors, rel(wp))
    return model.eval()


def fp16_reproduces(found, model, tensors16: dict, pt, jobs: int | None = None) -> bool:
    """Whether a copy of `model` with float16-rounded weights reproduces its scores on the ranked set
    within `REENHANCE_TOL` (PESQ-WB, STOI, SI-SDR per utterance and mean)."""
    half = load_into(copy.deepcopy(model).float().cpu(), tensors16, "float16 weights").eval()
    model = model.float().cpu().eval()
    ids = pt.utt_ids("test")
    a, b = [], []
    for u in ids:
        clean, noisy = pt.load_clean("test", u), pt.load_noisy("test", u)
        a.append((u, clean, enhance_one(found, model, noisy, clean, "cpu")))
        b.append((u, clean, enhance_one(found, half, noisy, clean, "cpu")))
    ra, rb = _rescore_rows(a, list(FP16_METRICS), jobs), _rescore_rows(b, list(FP16_METRICS), jobs)
    for m in FP16_METRICS:
        per, mean = _tol(REENHANCE_TOL, m)
        d = np.array([ra[u][m] - rb[u][m] for u in ids], dtype=float)
        if np.nanmax(np.abs(d)) > per or abs(np.nanmean(d)) > mean:
            return False
    return True
