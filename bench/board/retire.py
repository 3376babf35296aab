"""`bench retire RUN`: a superseded run gives up its shipped audio and weights, never its record (its scores
and hashes stay, so it still loads, compares and verifies; docs/board.md). It deletes only inside the run's
own folders under the results root: a folder that is a link, an ``outputs.dir`` or ``weights.file`` that
points elsewhere, is refused before anything is deleted."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.board.rows import RETIRED, collect
from bench.core.errors import BenchError
from bench.scoring.results import (RESULTS_DIR, check_home, iter_run_dirs, load_run, outputs_dir, rel, weights_file,
                                   write_json)


def retire(path: Path, results_root: Path | None = None) -> list[Path]:
    """Drop the shipped outputs and weights of run `path` on every set it was scored on; refused while any of
    its folders is a board row. Returns the folders changed."""
    results_root = Path(results_root or RESULTS_DIR)
    check_home(Path(path), results_root)
    run = load_run(path)
    board = collect(results_root)
    holding = {(row.run.model, row.run.run_id): (key, row.label)
               for key, rows in (*board.sets.items(), *board.archived.items()) for row in rows}
    if (run.model, run.run_id) in holding:
        key, label = holding[(run.model, run.run_id)]
        raise BenchError(f"{rel(path)}: run {run.run_id} is the row of {label} on {key}; only a superseded run "
                         "may drop its outputs and weights", hint="a newer run of the same configuration takes the row first")
    folders = [d for d in iter_run_dirs(results_root) if d.parent.name == run.model and d.name == run.run_id]
    plan = []
    for d in folders:   # every path checked before anything is deleted
        check_home(d, results_root)
        r = load_run(d)
        plan.append((d, r, outputs_dir(r), weights_file(r, results_root)))
    for d, r, out, wp in plan:
        o, w = dict(r.summary["outputs"]), dict(r.summary.get("weights") or {})
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
            r.summary["outputs"] = {**o, "shipped": False, "dir": None, "format": None}
        if w.get("shipped"):
            if wp is not None:
                wp.unlink(missing_ok=True)
            r.summary["weights"] = {**w, "shipped": False, "file": None, "sha256": None, "dtype": None, "bytes": None,
                                    "reason": RETIRED}
        write_json(d / "summary.json", r.summary)
    return folders
