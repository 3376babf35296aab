"""`bench reproduce RUN`: train the run's model again from its record (config.json: model and training
configuration, seed included; summary.json: the steps reached, the track, split and noise) to the same
number of steps, and compare the weights. Training batches are a pure function of (seed, step), so on the
same kind of machine (same torch build, same thread count) the retrained model is bit-identical: its
weights hash (`bench.scoring.weights.tensors_sha256`) equals the recorded one. A run whose budget was
wall-clock minutes is retrained to the steps it reached."""

from __future__ import annotations

import json
from pathlib import Path

from bench.adapters.base import get_adapter
from bench.core.errors import BenchError
from bench.corpora.root import prepared_root as default_prepared
from bench.data.prepared import PreparedTrack
from bench.data.tracks import track_version
from bench.protocol import Protocol
from bench.scoring.results import load_run, rel
from bench.scoring.weights import state_tensors, tensors_sha256
from bench.train.runconfig import RunConfig
from bench.train.trainer import train


def reproduce(run_path: Path, *, runs_dir: Path, prepared_root: Path | None = None, device: str = "cpu",
              progress=None, track=None) -> dict:
    """Retrain and compare; `track`: the Track trained on when it is not a registered one (tests)."""
    run = load_run(run_path)
    if not run.summary["budget"].get("trained"):
        raise BenchError(f"{rel(run_path)}: {run.model} was not trained; there is nothing to reproduce")
    record = json.loads((run.path / run.summary["files"]["config"]).read_text())
    training, weights = run.summary.get("training"), run.summary.get("weights")
    if not training or not weights:
        raise BenchError(f"{rel(run_path)}: results schema v{run.summary['schema_version']} records no training "
                         "data or weights hash; only v2 runs can be reproduced")
    steps = int(run.summary["budget"]["steps"])
    cfg = {**record["train"], "max_steps": steps, "max_minutes": None}
    rc = RunConfig(run.model, record["model_config"], record.get("preset"), cfg)
    found = get_adapter(run.model)
    pt = PreparedTrack(track or track_version(training["track"], training["split_id"]), Protocol.load(training["protocol"]),
                       prepared_root or default_prepared(None))
    pt.require()
    run_id = f"reproduce-{run.run_id}"
    target = Path(runs_dir) / pt.track.name / run.model / run_id
    if target.exists():
        raise BenchError(f"{target} exists", hint="delete it, or pass another --runs-dir")
    model, budget, _ = train(found, pt, rc, run_id=run_id, device=device, resume=False, runs_dir=runs_dir,
                             progress=progress)
    got = tensors_sha256(state_tensors(model.to("cpu")))
    return {"run": rel(run.path), "steps": budget["steps"], "recorded_weights_sha256": weights["weights_sha256"],
            "reproduced_weights_sha256": got, "identical": got == weights["weights_sha256"],
            "hardware": budget.get("hardware"), "recorded_hardware": run.summary["budget"].get("hardware")}
