"""Scoring one frozen test set (`bench.scoring.suite.Evaluation`): enhance, then summarize. The model runs
in this process one utterance at a time (offline, or through its streamer for ``stream``), metrics in a
process pool overlapping with inference; outputs are scored as 16-bit files store them. The noisy input's
scores are cached beside the prepared audio (`noisy_scores`). Finished rows go to ``.scoring.partial.jsonl``
under the model's fingerprint, so an interrupted scoring resumes with the same model's rows only."""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench import SAMPLE_RATE, __version__
from bench.adapters.base import Found, count_parameters
from bench.adapters.streaming import stream
from bench.core.audio import from_pcm16, sha256_pcm16, to_pcm16, write_wav_pcm16
from bench.core.env import environment_record, git_state, now_iso
from bench.core.errors import BenchError
from bench.core.files import atomic_write_bytes
from bench.core.workers import worker_pool
from bench.metrics.registry import compute_all, metric_versions
from bench.scoring.results import (CI_CONFIDENCE, CI_RESAMPLES, CI_SEED, SCHEMA_VERSION, dump_json, per_utterance_bytes,
                                   read_per_utterance, sha256_bytes, summarize_metrics, validate_summary, write_json)
from bench.scoring.runguard import model_fingerprint, open_partial
from bench.scoring.suite import Evaluation

PARTIAL = ".scoring.partial.jsonl"
OUTPUTS_DIR = "enhanced"


def metric_row(args) -> dict:
    """Columns ``<prefix><metric>`` and ``errors`` of one signal; `args`: one picklable tuple for the pool."""
    utt_id, clean, signal, names, prefix = args
    vals, errs = compute_all(clean, signal, SAMPLE_RATE, names)
    return {"utt_id": utt_id, **{f"{prefix}{k}": v for k, v in vals.items()},
            "errors": {f"{prefix}{k}": v for k, v in errs.items()}}


def _append(fh, row: dict) -> None:
    try:
        fh.write(json.dumps(row, allow_nan=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    except OSError as exc:  # e.g. disk full: name the file
        raise OSError(exc.errno, exc.strerror, fh.name) from None


def enhance_one(found: Found, model, noisy: np.ndarray, clean: np.ndarray | None, device: str,
                mode: str = "offline") -> np.ndarray:
    """The model's output for one utterance, as stored: 16-bit, clipped, float32 in [-1, 1)."""
    a = found.adapter
    x = torch.from_numpy(noisy)[None].to(device)
    with torch.inference_mode():
        if mode == "stream":
            streamer = a.streamer(model)
            y = stream(streamer, x, streamer.hop)
        else:
            c = torch.from_numpy(clean)[None].to(device) if (clean is not None and a.oracle) else None
            y = a.enhance(model, x, clean=c)
    y = y.detach().float().cpu().numpy().reshape(1, -1) if y.dim() != 2 else y.detach().float().cpu().numpy()
    if y.shape != (1, noisy.shape[0]):
        raise BenchError(f"adapter {a.name}: output shape {tuple(y.shape)} != input shape {(1, noisy.shape[0])}",
                         hint=f"an adapter must map (batch, time) to (batch, time); run `bench check {a.name}`")
    if not np.all(np.isfinite(y)):
        raise BenchError(f"adapter {a.name}: output contains NaN or Inf")
    return from_pcm16(to_pcm16(y[0]))


def metric_pool(jobs: int | None):
    """Metric workers (one torch thread each) that die with this process."""
    return worker_pool(jobs, initializer=torch.set_num_threads, initargs=(1,))


def noisy_scores(ev: Evaluation, names: tuple[str, ...], jobs: int | None = None) -> dict[str, dict]:
    """Per-utterance rows of the noisy input's scores of `ev` (``noisy_<metric>``, ``errors``), cached in
    the prepared noisy folder under a name that hashes the metric names and versions."""
    pt = ev.prepared
    versions = metric_versions()
    key = hashlib.sha256(json.dumps([[m, versions[m]] for m in names], sort_keys=True).encode()).hexdigest()[:12]
    cache = pt.noisy_dir / f"noisy_scores.{key}.json"
    ids = pt.utt_ids("test")
    if cache.exists():
        rows = json.loads(cache.read_text())
        if sorted(rows) == sorted(ids):
            return rows
    with metric_pool(jobs) as ex:
        futs = [ex.submit(metric_row, (u, pt.load_clean("test", u), pt.load_noisy("test", u), names, "noisy_"))
                for u in ids]
        rows = {f.result()["utt_id"]: f.result() for f in futs}
    atomic_write_bytes(cache, json.dumps(rows, allow_nan=True).encode())
    return rows


def score(found: Found, model: torch.nn.Module, ev: Evaluation, out_dir: Path, *, run_id: str, config: dict,
          budget: dict, speed: dict, weights: dict | None, training: dict | None, ship_outputs: bool,
          jobs: int | None = None, device: str = "cpu", progress=None, started: float | None = None,
          metrics: tuple[str, ...] | None = None, provenance: dict | None = None) -> Path:
    """Score `model` on `ev`, writing a complete results folder to `out_dir`; the run-level records (and
    `provenance`, the git state when the run started, default now) repeat in every folder of the run."""
    t_start = started or time.time()
    pt = ev.prepared
    pt.require()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = tuple(metrics or ev.metrics)
    ids = pt.utt_ids("test")
    noisy_rows = noisy_scores(ev, names, jobs)
    model = model.to(device).eval()
    done = enhance_set(found, model, ev, out_dir, names, ids, config=config, ship_outputs=ship_outputs, jobs=jobs,
                       device=device, progress=progress)
    csv_bytes = per_utterance_table(ev, ids, done, noisy_rows, names)
    git = provenance or git_state()
    summary = summarize(found, model, ev, read_per_utterance(csv_bytes), csv_bytes, names, run_id=run_id,
                        config=config, budget=budget, speed=speed, weights=weights, training=training,
                        ship_outputs=ship_outputs, git=git)
    validate_summary(summary)
    atomic_write_bytes(out_dir / "per_utterance.csv", csv_bytes)
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "env.json", environment_record(wall_seconds=round(time.time() - t_start, 2), git=git))
    atomic_write_bytes(out_dir / "summary.json", dump_json(summary))  # last: its presence marks a complete run
    (out_dir / PARTIAL).unlink(missing_ok=True)
    return out_dir


def enhance_set(found: Found, model, ev: Evaluation, out_dir: Path, names: tuple[str, ...], ids: list[str], *,
                config: dict, ship_outputs: bool, jobs: int | None, device: str, progress) -> dict[str, dict]:
    """Enhance the test utterances `ids` of `ev` and measure each output (metrics in the pool, overlapping with
    inference), resuming the partial file of the same model; returns every utterance's row by id."""
    pt = ev.prepared
    partial = out_dir / PARTIAL
    done = open_partial(partial, model_fingerprint(model, config),
                        derived=list((out_dir / OUTPUTS_DIR).glob("*.flac")))
    todo = [u for u in ids if u not in done]
    if ship_outputs:
        (out_dir / OUTPUTS_DIR).mkdir(exist_ok=True)
    label = f"score {found.adapter.name} on {ev.key}"
    task = progress.add_task(label, total=len(ids), completed=len(done)) if progress else None
    with open(partial, "a") as fh, metric_pool(jobs) as ex:
        if not partial.read_bytes().endswith(b"\n"):
            fh.write("\n")  # end a line cut by an interruption, so the next row is readable
        futures: list[tuple[Future, str]] = []

        def finish(fut: Future, sha: str) -> None:
            row = {**fut.result(), "output_sha256": sha}
            _append(fh, row)
            done[row["utt_id"]] = row
            if progress:
                progress.advance(task)

        try:
            for utt in todo:
                clean, noisy = pt.load_clean("test", utt), pt.load_noisy("test", utt)
                y = enhance_one(found, model, noisy, clean, device, ev.mode)
                if ship_outputs:
                    write_wav_pcm16(out_dir / OUTPUTS_DIR / f"{utt}.flac", y)
                futures.append((ex.submit(metric_row, (utt, clean, y, names, "")), sha256_pcm16(to_pcm16(y))))
                while futures and (futures[0][0].done() or len(futures) > 4 * (jobs or os.cpu_count() or 1)):
                    finish(*futures.pop(0))
        except BaseException:
            for f, sha in futures:   # keep what the workers finish; leaving the pool waits for them anyway
                if not f.cancelled() and f.exception() is None:
                    finish(f, sha)
            raise
        for f, sha in futures:
            finish(f, sha)
    if ship_outputs:   # a resumed scoring: outputs of rows finished before the interruption
        for utt in ids:
            path = out_dir / OUTPUTS_DIR / f"{utt}.flac"
            if not path.exists():
                y = enhance_one(found, model, pt.load_noisy("test", utt), pt.load_clean("test", utt), device, ev.mode)
                write_wav_pcm16(path, y)
    return done


def per_utterance_table(ev: Evaluation, ids: list[str], done: dict, noisy_rows: dict, names: tuple[str, ...]) -> bytes:
    """``per_utterance.csv``: the metrics of output and noisy input, the output's hash and the errors."""
    rows = []
    for u in ids:
        r, n = done[u], noisy_rows[u]
        errors = {**r.get("errors", {}), **n.get("errors", {})}
        rows.append({"utt_id": u, "seconds": round(len(ev.prepared.load_clean("test", u)) / SAMPLE_RATE, 4),
                     **{m: r[m] for m in names}, **{f"noisy_{m}": n[f"noisy_{m}"] for m in names},
                     "output_sha256": r["output_sha256"],
                     "errors": json.dumps(errors, sort_keys=True) if errors else ""})
    return per_utterance_bytes(pd.DataFrame(rows).sort_values("utt_id").reset_index(drop=True))


def summarize(found: Found, model, ev: Evaluation, stored: pd.DataFrame, csv_bytes: bytes, names: tuple[str, ...], *,
              run_id: str, config: dict, budget: dict, speed: dict, weights: dict | None, training: dict | None,
              ship_outputs: bool, git: dict) -> dict:
    """``summary.json`` of a scoring, its statistics computed from the stored per-utterance table."""
    a, pt = found.adapter, ev.prepared
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created": now_iso(),
        "model": {"name": a.name, "kind": found.kind, "description": a.description, "reference": a.reference,
                  "trainable": a.trainable, "causal": a.causal, "oracle": a.oracle,
                  "external": bool(getattr(a, "external", False)),
                  "pretrained_on": getattr(a, "pretrained_on", None),
                  "parameters": count_parameters(model), "preset": config.get("preset")},
        "benchmark": {"bench_version": __version__, "protocol": pt.protocol.record(),
                      "track": pt.track.record(pt.root), "split": "test", "evaluation": ev.record()},
        "training": training,
        "metrics": summarize_metrics(stored, list(names)),
        "metric_versions": {m: v for m, v in metric_versions().items() if m in names},
        "counts": {"utterances": len(stored), "audio_seconds": round(float(stored["seconds"].sum()), 3),
                   "failed_utterances": int((stored["errors"].fillna("") != "").sum())},
        "ci": {"method": "percentile bootstrap of the mean", "confidence": CI_CONFIDENCE,
               "resamples": CI_RESAMPLES, "seed": CI_SEED},
        "speed": speed,
        "budget": budget,
        "weights": weights,
        "outputs": {"shipped": ship_outputs, "dir": OUTPUTS_DIR if ship_outputs else None,
                    "format": "FLAC, 16-bit PCM, 16 kHz" if ship_outputs else None,
                    "hashes": "per_utterance.csv output_sha256 (SHA-256 of the 16-bit samples)"},
        "provenance": {"commit": git["commit"], "dirty": git["dirty"], "dirty_paths": git.get("dirty_paths", [])},
        "files": {"per_utterance": "per_utterance.csv", "per_utterance_sha256": sha256_bytes(csv_bytes),
                  "config": "config.json", "env": "env.json"},
    }
