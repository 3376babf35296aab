"""Scoring: enhance the frozen noisy test set with a model and compute every metric per utterance.

The model runs in the main process (one utterance at a time, full length); metrics run in a
process pool over utterances (``--jobs``, default all cores), overlapping with inference. Each
finished utterance is appended to ``.scoring.partial.jsonl`` in the run folder (flushed and
fsynced), so an interrupted scoring resumes without recomputing finished utterances. Outputs
are scored as 16-bit audio, as they would be written to disk.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench import SAMPLE_RATE, __version__
from bench.adapters import Found, count_parameters
from bench.audio import from_pcm16, to_pcm16, write_wav_pcm16
from bench.data.prepared import PreparedTrack
from bench.env import cpu_model, environment_record, now_iso
from bench.errors import BenchError
from bench.metrics import METRICS, metric_versions
from bench.results import (dump_json, per_utterance_bytes, sha256_bytes, summarize_metrics, validate_summary,
                           write_json)
from bench.runguard import model_fingerprint, open_partial
from bench.speed import measure_rtf
from bench.workers import worker_pool

PARTIAL = ".scoring.partial.jsonl"
#: utterances whose enhanced audio is kept in every run (for listening); same as the noise examples
LISTEN_UTTERANCES = ("p232_005", "p257_011", "p232_170")
RTF_SECONDS = 10.0


def _score_one(args) -> dict:
    from bench.metrics import compute_all

    utt_id, clean, noisy, enhanced, names = args
    vals, errs = compute_all(clean, enhanced, SAMPLE_RATE, names)
    nvals, nerrs = compute_all(clean, noisy, SAMPLE_RATE, names)
    row = {"utt_id": utt_id, "seconds": round(len(clean) / SAMPLE_RATE, 4)}
    row.update(vals)
    row.update({f"noisy_{k}": v for k, v in nvals.items()})
    row["errors"] = json.dumps({**errs, **{f"noisy_{k}": v for k, v in nerrs.items()}}, sort_keys=True) if (errs or nerrs) else ""
    return row


def _read_partial(path: Path) -> dict[str, dict]:
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                done[row["utt_id"]] = row
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut by an interruption: recomputed
    return done


def _append(fh, row: dict) -> None:
    try:
        fh.write(json.dumps(row, allow_nan=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    except OSError as exc:  # e.g. disk full: name the file
        raise OSError(exc.errno, exc.strerror, fh.name) from None


def enhance_one(found: Found, model, noisy: np.ndarray, clean: np.ndarray | None, device: str) -> np.ndarray:
    x = torch.from_numpy(noisy)[None].to(device)
    c = torch.from_numpy(clean)[None].to(device) if (clean is not None and found.adapter.oracle) else None
    with torch.inference_mode():
        y = found.adapter.enhance(model, x, clean=c)
    y = y.detach().float().cpu().numpy()
    if y.shape != (1, noisy.shape[0]):
        raise BenchError(f"adapter {found.adapter.name}: output shape {tuple(y.shape)} != input shape {(1, noisy.shape[0])}",
                         hint="an adapter must map (batch, time) to (batch, time); run `bench check " + found.adapter.name + "`")
    if not np.all(np.isfinite(y)):
        raise BenchError(f"adapter {found.adapter.name}: output contains NaN or Inf")
    return from_pcm16(to_pcm16(y[0]))


def score(found: Found, model: torch.nn.Module, pt: PreparedTrack, out_dir: Path, *, run_id: str, config: dict,
          budget: dict, split: str = "test", jobs: int | None = None,
          device: str = "cpu", progress=None, metrics: list[str] | None = None,
          speed_extra: dict | None = None, started: float | None = None) -> Path:
    """Score `model` on the prepared `split`, writing a complete run folder to `out_dir`; `config` is the
    run's configuration record (`bench.runconfig.RunConfig.record`), written as its config.json."""
    t_start = started or time.time()
    pt.require()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(metrics or METRICS)
    utt_ids = pt.utt_ids(split)
    partial = out_dir / PARTIAL
    done = open_partial(partial, model_fingerprint(model, config),  # rows of another model are discarded
                        derived=sorted((out_dir / "enhanced").glob("*.flac")))
    todo = [u for u in utt_ids if u not in done]
    model = model.to(device).eval()
    listen = [u for u in LISTEN_UTTERANCES if u in utt_ids] or utt_ids[:3]
    (out_dir / "enhanced").mkdir(exist_ok=True)
    task = progress.add_task(f"score {found.adapter.name}", total=len(utt_ids), completed=len(done)) if progress else None
    with open(partial, "a") as fh, worker_pool(jobs) as ex:
        if fh.tell() and not partial.read_bytes().endswith(b"\n"):
            fh.write("\n")  # end a line cut by an interruption, so the next row is readable
        futures: list[Future] = []
        try:
            for utt in todo:
                clean = pt.load_clean(split, utt)
                noisy = pt.load_noisy(split, utt)
                enhanced = enhance_one(found, model, noisy, clean, device)
                if utt in listen:
                    write_wav_pcm16(out_dir / "enhanced" / f"{utt}.flac", enhanced)  # (FLAC by its suffix)
                futures.append(ex.submit(_score_one, (utt, clean, noisy, enhanced, names)))
                # write finished rows as they come, keeping memory bounded
                while futures and (futures[0].done() or len(futures) > 4 * (jobs or os.cpu_count() or 1)):
                    row = futures.pop(0).result()
                    _append(fh, row)
                    done[row["utt_id"]] = row
                    if progress:
                        progress.advance(task)
        except BaseException:
            # interrupted (or the model failed): keep the rows the workers finish, as leaving the
            # pool waits for them anyway; a second Ctrl-C while waiting abandons them
            for f in futures:
                if not f.cancelled() and f.exception() is None:
                    _append(fh, f.result())
            raise
        for f in futures:
            row = f.result()
            _append(fh, row)
            done[row["utt_id"]] = row
            if progress:
                progress.advance(task)
    for utt in listen:  # resumed runs may lack some listening files
        if not (out_dir / "enhanced" / f"{utt}.flac").exists():
            y = enhance_one(found, model, pt.load_noisy(split, utt), pt.load_clean(split, utt), device)
            write_wav_pcm16(out_dir / "enhanced" / f"{utt}.flac", y)

    cols = ["utt_id", "seconds", *names, *[f"noisy_{m}" for m in names], "errors"]
    df = pd.DataFrame([done[u] for u in utt_ids])[cols].sort_values("utt_id").reset_index(drop=True)
    df["errors"] = df["errors"].fillna("")
    csv_bytes = per_utterance_bytes(df)
    df = pd.read_csv(pd.io.common.BytesIO(csv_bytes), dtype={"utt_id": str, "errors": str})  # summarize exactly what is stored
    rtf = measure_rtf(found.adapter, model.to("cpu"), seconds=RTF_SECONDS, threads=1)
    a = found.adapter
    summary = {
        "schema_version": 1,
        "run_id": run_id,
        "created": now_iso(),
        "model": {"name": a.name, "kind": found.kind, "description": a.description, "reference": a.reference,
                  "trainable": a.trainable, "causal": a.causal, "oracle": a.oracle,
                  "parameters": count_parameters(model), "preset": config.get("preset")},
        "benchmark": {"bench_version": __version__, "protocol": pt.protocol.record(),
                      "track": pt.track.record(pt.root), "split": split},
        "metrics": summarize_metrics(df, names),
        "metric_versions": {m: v for m, v in metric_versions().items() if m in names},
        "counts": {"utterances": len(df), "audio_seconds": round(float(df["seconds"].sum()), 3),
                   "failed_utterances": int((df["errors"].fillna("") != "").sum())},
        "ci": {"method": "percentile bootstrap of the mean", "confidence": 0.95, "resamples": 10000, "seed": 0},
        "speed": {"rtf_cpu_1thread": round(rtf, 5), "rtf_input_seconds": RTF_SECONDS, "cpu": cpu_model(),
                  "causal": a.causal, "latency_ms": None, "rtf_stream": None, "stream_chunk_samples": None,
                  **(speed_extra or {})},
        "budget": budget,
        "files": {"per_utterance": "per_utterance.csv", "per_utterance_sha256": sha256_bytes(csv_bytes),
                  "config": "config.json", "env": "env.json",
                  "enhanced": sorted(f"enhanced/{p.name}" for p in (out_dir / "enhanced").glob("*.flac"))},
    }
    validate_summary(summary)
    from bench.audio import atomic_write_bytes

    atomic_write_bytes(out_dir / "per_utterance.csv", csv_bytes)
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "env.json", environment_record(wall_seconds=round(time.time() - t_start, 2)))
    atomic_write_bytes(out_dir / "summary.json", dump_json(summary))  # written last: its presence marks a complete run
    partial.unlink(missing_ok=True)
    return out_dir
