"""The board's data: every results folder checked, the refused ones with their reason, and the row shown
for each model configuration on each evaluation set. `bench.board.leaderboard` renders it as markdown and
`bench.board.site` as a web page; neither reads results/ itself.

A folder is refused (listed with the first line of the reason) unless:
- it loads (`bench.scoring.results.load_run`: schema, CSV hash, every statistic recomputed from the CSV);
- its folder is ``<track>/<noise>/<model>/<run-id>`` as its summary says, and that set is in the
  evaluation suite of a benchmark track (bench/scoring/suite.py);
- its model is an adapter of this repository (`bench list`);
- it was scored under the current protocol (or the track's recorded noise), on the track's current or an
  archived split, on exactly the frozen test utterances, each once;
- its noisy-input columns equal those of the ``noisy`` run of the same set (same inputs, same metric code);
- its per-utterance scores are not a copy of another run's (the older one is kept).

Row selection (printed on the board): one row per model configuration (adapter, model config, training
noise): the most recent run that is *clean* (made from committed code), on the ranked set ships its
outputs, and, for a trained model, ships its weights and was trained as its preset says (its step
budget, and no other training option changed: `HOW_NOT_WHAT` lists the ones that may be); when none is,
the most recent run, marked. Archived splits get their own table.
A trained model whose output is inverted on the validation set (negative least-squares scale onto the
clean target, recorded by the trainer) is marked too, and so is one whose output is more than 20 dB
quieter than the target there (scale below `QUIET_SCALE`): neither shows in SI-SDR, PESQ or STOI, both
in SNR and to a listener.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.core.errors import BenchError, ResultsError
from bench.train.runconfig import read_record

#: a validation scale below this (the output more than 20 dB below the clean target) marks the row
QUIET_SCALE = 0.1

if TYPE_CHECKING:
    from bench.scoring.results import Run

#: noisy-column agreement with the noisy run of the set (both computed by the same code on the same inputs)
NOISY_TOL = 2e-4
SCORE_COLUMNS_IGNORED = ("utt_id", "seconds", "errors", "output_sha256")


@dataclass
class Row:
    run: Run
    label: str            # "demucs · quick", "demucs · quick (trained on stft-heavy-v1)"
    marks: list[str] = field(default_factory=list)   # "dirty", "below preset budget", ...

    @property
    def role(self) -> str:
        s = self.run.summary["model"]
        if s["oracle"]:
            return "oracle"
        if self.run.model == "noisy":
            return "floor"
        return "system"


@dataclass
class Board:
    sets: dict[str, list[Row]]                  # evaluation key "<track>/<noise>" -> rows (current split)
    archived: dict[str, list[Row]]              # "<track>/<noise> (<split id>)" -> rows of archived splits
    refused: list[tuple[str, str]]              # (folder relative to the repo, reason)
    roles: dict[str, str]                       # evaluation key -> role in the suite
    noisy: dict[str, Run] = field(default_factory=dict)

    def rows(self, key: str) -> list[Row]:
        return self.sets.get(key, [])


def _test_ids(track) -> list[str]:
    return [u.utt_id for u in track.utterances(split="test")]


def _noise_record(track, noise_name: str):
    from bench.data.recorded import RecordedNoise
    from bench.protocol import Protocol

    if noise_name == "recorded":
        return RecordedNoise.of(track)
    return Protocol.load(noise_name)


def model_config_key(run: Run) -> str:
    cfg = read_record(run.path).get("model_config")
    return "" if cfg is None else json.dumps(cfg, sort_keys=True, separators=(",", ":"))


def preset_of(run: Run) -> str | None:
    record = read_record(run.path)
    if "preset" in record:
        return record["preset"]
    return run.summary["model"].get("preset") or run.summary["budget"].get("preset")


def training_noise(run: Run) -> str | None:
    t = run.summary.get("training")
    return t["protocol"] if t else (read_record(run.path).get("protocol") if run.summary["model"]["trainable"]
                                    else None)


def check_folder(d: Path, results_dir: Path, adapters: dict) -> tuple[Run, str, bool]:
    """(run, its evaluation role, archived?) of a results folder, or ResultsError/BenchError."""
    from bench.data.tracks import track_version
    from bench.scoring.results import check_against_benchmark, load_run
    from bench.scoring.suite import role_of

    run = load_run(d)
    track_name, noise = d.parent.parent.parent.name, d.parent.parent.name
    parts = (run.track, run.noise, run.model, run.run_id)
    if parts != (track_name, noise, d.parent.name, d.name):
        raise ResultsError(f"folder is results/{track_name}/{noise}/{d.parent.name}/{d.name} but summary.json says "
                           f"results/{'/'.join(parts)}")
    role = role_of(track_name, noise)
    if role is None:
        raise ResultsError(f"results/{track_name}/{noise}/ is no evaluation set of any benchmark track")
    if run.model not in adapters:
        raise ResultsError(f"model {run.model!r} is no adapter of this repository (`bench list`)")
    track = track_version(track_name, run.split_id)
    if not track.frozen:
        raise ResultsError(f"track {track_name} has no frozen manifest; its runs cannot be checked")
    check_against_benchmark(run, protocol=_noise_record(track, noise.removesuffix("+stream")),
                            track_record=track.record(), test_ids=_test_ids(track))
    from bench.data.tracks import load_track

    return run, role, track.split_id != load_track(track_name).split_id


def _score_fingerprint(run: Run) -> str:
    import hashlib

    cols = [c for c in run.per_utterance.columns if c not in SCORE_COLUMNS_IGNORED and not c.startswith("noisy_")]
    return hashlib.sha256(run.per_utterance[["utt_id", *cols]].to_csv(index=False).encode()).hexdigest()


def _check_noisy_columns(run: Run, ref: Run) -> None:
    import numpy as np

    a, b = run.per_utterance.set_index("utt_id"), ref.per_utterance.set_index("utt_id")
    for m in run.metric_names:
        if m not in ref.metric_names:
            continue
        x, y = a[f"noisy_{m}"].to_numpy(float), b.loc[a.index, m].to_numpy(float)
        bad = ~((np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= NOISY_TOL))
        if bad.any():
            utt = a.index[np.argmax(bad)]
            raise ResultsError(f"noisy_{m} of {utt} is {x[np.argmax(bad)]:.6f}, the noisy input scores "
                               f"{y[np.argmax(bad)]:.6f} (results/{ref.track}/{ref.noise}/noisy/{ref.run_id})")


#: training options that say how a run was computed, not what: a run may differ from its preset in these
HOW_NOT_WHAT = ("max_steps", "max_minutes", "log_every", "checkpoint_every", "num_workers", "cpu_threads", "compile")


def _preset_training(adapter, preset: str | None) -> dict | None:
    """The training configuration a run of `preset` gets with no override (None: no such preset)."""
    from bench.train.runconfig import train_config

    if not preset or preset not in adapter.presets:
        return None
    try:
        return json.loads(json.dumps(train_config(adapter, preset, {})))
    except BenchError:   # a preset without a step or time budget
        return None


def _unlike_preset(run: Run, want: dict) -> list[str]:
    """The training options in which a trained run differs from its preset's training `want` (`--train-set`,
    or the preset changed since). An option the run's record lacks predates it: the run trained with its
    default."""
    from bench.train.trainer import DEFAULTS

    trained = read_record(run.path).get("train")
    if not isinstance(trained, dict):
        return []
    return sorted(k for k in want if k not in HOW_NOT_WHAT and trained.get(k, DEFAULTS.get(k)) != want[k])


def _eligible(run: Run, adapters: dict, ranked: bool = False) -> list[str]:
    """Why a run may not take a row from a cleaner one (empty: it may). On the ranked set (`ranked`) a run
    of the benchmark protocol ships its outputs (bench/run/pipeline.py)."""
    from bench.protocol import DEFAULT_PROTOCOL

    marks = []
    if run.dirty:
        marks.append("dirty")
    b = run.summary["budget"]
    if b.get("trained"):
        preset = _preset_training(adapters[run.model].adapter, preset_of(run)) or {}
        want, steps = preset.get("max_steps"), b.get("steps") or 0
        if want and steps != want:
            marks.append(f"{'below' if steps < want else 'above'} preset budget ({b.get('steps')} of {want} steps)")
        if unlike := _unlike_preset(run, preset):
            marks.append(f"trained unlike its preset ({', '.join(unlike)})")
        if not (run.summary.get("weights") or {}).get("shipped"):
            marks.append("weights not shipped")
    if ranked and training_noise(run) in (None, DEFAULT_PROTOCOL) and not run.summary["outputs"].get("shipped"):
        marks.append("outputs not shipped")
    return marks


def label_of(run: Run, adapters: dict) -> str:
    preset = preset_of(run)
    name = run.model + (f" · {preset}" if preset and run.summary["model"]["trainable"] else "")
    tn = training_noise(run)
    from bench.protocol import DEFAULT_PROTOCOL

    if tn and tn != DEFAULT_PROTOCOL:
        name += f" (trained on {tn})"
    return name


def _distinguish(rows: list[Row]) -> None:
    """Rows of one set that would carry the same name (one adapter, two model configs, no preset to tell
    them apart) are named by the hash of their model config too."""
    import hashlib

    by_label: dict[str, list[Row]] = {}
    for r in rows:
        by_label.setdefault(r.label, []).append(r)
    for same in by_label.values():
        if len(same) > 1:
            for r in same:
                r.label += f" · config {hashlib.sha256(model_config_key(r.run).encode()).hexdigest()[:8]}"


def collect(results_dir: Path | None = None) -> Board:
    from bench.adapters.base import discover
    from bench.scoring.results import RESULTS_DIR, iter_run_dirs, rel

    results_dir = Path(results_dir or RESULTS_DIR)
    base = results_dir.resolve().parent

    def shown(path: Path) -> str:   # paths as the board shows them: relative to the folder holding results/
        p = Path(path).resolve()
        return p.relative_to(base).as_posix() if base in p.parents else rel(p)

    def reason(exc: Exception) -> str:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]   # schema errors: the fields follow
        return " ".join(lines[:4]).replace(f"{base}/", "")

    adapters = discover(strict=False)
    board = Board({}, {}, [], {})
    checked: list[tuple[Run, str, bool]] = []
    for d in iter_run_dirs(results_dir):
        try:
            checked.append(check_folder(d, results_dir, adapters))
        except (ResultsError, BenchError) as exc:
            board.refused.append((shown(d), reason(exc)))
    # the noisy input of each current set: the reference for every run's noisy columns
    for run, role, archived in checked:
        key = f"{run.track}/{run.noise}"
        board.roles[key] = role
        if run.model == "noisy" and not archived:
            old = board.noisy.get(key)
            if old is None or (run.summary["created"], run.run_id) > (old.summary["created"], old.run_id):
                board.noisy[key] = run
    seen: dict[tuple[str, str], Run] = {}
    groups: dict[tuple, list[Run]] = {}
    for run, role, archived in sorted(checked, key=lambda c: (c[0].summary["created"], c[0].run_id)):
        key = f"{run.track}/{run.noise}"
        try:
            ref = board.noisy.get(key)
            if ref is not None and not archived and run.model != "noisy":
                _check_noisy_columns(run, ref)
            fp = (key, _score_fingerprint(run))
            if fp in seen and run.model != "noisy":
                other = seen[fp]
                raise ResultsError(f"per_utterance.csv scores are identical to those of "
                                   f"results/{key}/{other.model}/{other.run_id}")
            seen.setdefault(fp, run)
        except ResultsError as exc:
            board.refused.append((shown(run.path), reason(exc)))
            continue
        set_key = f"{key} ({run.split_id})" if archived else key
        groups.setdefault((set_key, archived, run.model, model_config_key(run), training_noise(run)), []).append(run)
    for (set_key, archived, *_), runs in sorted(groups.items(), key=lambda kv: kv[0][:3]):
        ranked = not archived and board.roles.get(set_key) == "main"
        why = [_eligible(r, adapters, ranked) for r in runs]
        ok = [r for r, w in zip(runs, why) if not w]
        chosen = (ok or runs)[-1]   # with none eligible, the most recent run, with its marks
        row = Row(chosen, label_of(chosen, adapters), [] if ok else why[-1])
        scale = chosen.summary["budget"].get("valid_scale")
        if scale is not None and scale < 0:   # what SI-SDR, PESQ and STOI do not see; SNR and a listener do
            row.marks.append(f"output inverted (validation scale {scale:+.2f})")
        elif scale is not None and scale < QUIET_SCALE:
            row.marks.append(f"output {-20 * math.log10(max(scale, 1e-5)):.0f} dB too quiet "
                             f"(validation scale {scale:+.2f})")
        (board.archived if archived else board.sets).setdefault(set_key, []).append(row)
    for rows in (*board.sets.values(), *board.archived.values()):
        _distinguish(rows)
    board.refused.sort()
    return board


# ---------------------------------------------------------------------------------------------
# a superseded run gives up its audio and weights, never its record
def retire(path: Path, results_root: Path | None = None) -> list[Path]:
    """Drop the shipped outputs and weights of run `path` (every set it was scored on) once a newer run
    holds its row on every board set: its per-utterance scores, output hashes and ``weights_sha256`` stay,
    so its scores still load, compare and verify, and its weights can be checked against a retraining
    (`bench reproduce`). Refused while any of its folders is a board row. Returns the folders changed."""
    import shutil

    from bench.verify.evidence import weights_path
    from bench.scoring.results import RESULTS_DIR, iter_run_dirs, load_run, rel, write_json

    results_root = Path(results_root or RESULTS_DIR)
    run = load_run(path)
    board = collect(results_root)
    holding = {}
    for key, rows in (*board.sets.items(), *board.archived.items()):
        for row in rows:
            holding[(row.run.model, row.run.run_id)] = (key, row.label)
    if (run.model, run.run_id) in holding:
        key, label = holding[(run.model, run.run_id)]
        raise BenchError(f"{rel(path)}: run {run.run_id} is the row of {label} on {key}; only a superseded run "
                         "may drop its outputs and weights", hint="a newer run of the same configuration takes the row first")
    folders = [d for d in iter_run_dirs(results_root) if d.parent.name == run.model and d.name == run.run_id]
    reason = "superseded on the board: outputs and weights dropped to keep the repository within its size budget"
    for d in folders:
        r = load_run(d)
        o, w = dict(r.summary["outputs"]), dict(r.summary.get("weights") or {})
        if o.get("shipped"):
            shutil.rmtree(d / o["dir"], ignore_errors=True)
            r.summary["outputs"] = {**o, "shipped": False, "dir": None, "format": None}
        if w.get("shipped"):
            if (wp := weights_path(r, results_root)) is not None:
                wp.unlink(missing_ok=True)
            r.summary["weights"] = {**w, "shipped": False, "file": None, "sha256": None, "dtype": None, "bytes": None,
                                    "reason": reason}
        write_json(d / "summary.json", r.summary)
    return folders
