"""The board's data: every results folder checked, the refused ones with their reason, and the row shown for
each model configuration on each evaluation set; the leaderboard and the site render it and never read results/
themselves. The checks and the row rule: docs/board.md."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.adapters.catalogue import catalogue
from bench.core.errors import BenchError, ResultsError
from bench.data.recorded import RecordedNoise
from bench.data.tracks import load_track, track_version
from bench.protocol import DEFAULT_PROTOCOL, Protocol
from bench.scoring.derivations import Derivations
from bench.scoring.results import (RESULTS_DIR, Run, check_against_benchmark, check_home, iter_run_dirs, load_run,
                                   rel)
from bench.scoring.suite import role_of
from bench.train.options import DEFAULTS, HOW_NOT_WHAT
from bench.train.runconfig import read_record, train_config
from bench.verify import derived
from bench.verify.derived import QUIET_SCALE
from bench.verify.tolerances import RESCORE_TOL

#: noisy-column agreement with the noisy run of the set (both computed by the same code on the same inputs)
NOISY_TOL = 2e-4
#: the weights record of a run that `bench retire` superseded: it never takes a row again
RETIRED = "superseded on the board: outputs and weights dropped to keep the repository within its size budget"


@dataclass
class Row:
    run: Run
    label: str            # "demucs · quick", "demucs · quick (trained on stft-heavy-v1)"
    marks: list[str] = field(default_factory=list)   # "dirty", "below preset budget", ...
    package: str | None = None   # the pinned package an external system's pretrained weights come in

    @property
    def run_key(self) -> tuple[str, str]:
        """(model, run id): the same run's row on other sets has the same key."""
        return self.run.model, self.run.run_id

    @property
    def role(self) -> str:
        return "oracle" if self.run.summary["model"]["oracle"] else "floor" if self.run.model == "noisy" else "system"


@dataclass
class Board:
    sets: dict[str, list[Row]]                  # evaluation key "<track>/<noise>" -> rows (current split)
    archived: dict[str, list[Row]]              # "<track>/<noise> (<split id>)" -> rows of archived splits
    refused: list[tuple[str, str]]              # (folder relative to the repo, reason)
    roles: dict[str, str]                       # evaluation key -> role in the suite
    noisy: dict[str, Run] = field(default_factory=dict)

    def rows(self, key: str) -> list[Row]:
        return self.sets.get(key, [])


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


def check_folder(d: Path, results_dir: Path, adapters: dict,
                 derivations: Derivations | None = None) -> tuple[Run, str, bool]:
    """(run, its evaluation role, archived?) of a results folder, or ResultsError/BenchError."""
    check_home(d, results_dir)
    run = load_run(d, derivations)
    track_name, noise = d.parent.parent.parent.name, d.parent.parent.name
    parts = (run.track, run.noise, run.model, run.run_id)
    if parts != (track_name, noise, d.parent.name, d.name):
        raise ResultsError(f"folder is results/{track_name}/{noise}/{d.parent.name}/{d.name} but summary.json says "
                           f"results/{'/'.join(parts)}")
    if (role := role_of(track_name, noise)) is None:
        raise ResultsError(f"results/{track_name}/{noise}/ is no evaluation set of any benchmark track")
    if run.model not in adapters:
        raise ResultsError(f"model {run.model!r} is no adapter of this repository (`bench list`)")
    if problems := derived.problems(run, adapters[run.model], results_dir):
        raise ResultsError(f"{rel(d)}: {problems[0]}")
    track = track_version(track_name, run.split_id)
    if not track.frozen:
        raise ResultsError(f"track {track_name} has no frozen manifest; its runs cannot be checked")
    noise = noise.removesuffix("+stream")
    check_against_benchmark(run, protocol=RecordedNoise.of(track) if noise == "recorded" else Protocol.load(noise),
                            track_record=track.record(), test_ids=[u.utt_id for u in track.utterances(split="test")])
    return run, role, track.split_id != load_track(track_name).split_id


def configuration(run: Run) -> tuple[str, str, str | None]:
    """(model, model config, training noise): what makes two runs of a set the same configuration."""
    return run.model, model_config_key(run), training_noise(run)


def _check_noisy_columns(run: Run, ref: Run) -> None:
    ids = list(run.per_utterance["utt_id"])
    where = {u: i for i, u in enumerate(ref.per_utterance["utt_id"])}
    order = [where[u] for u in ids]   # a KeyError as .loc raised it: check_against_benchmark comes first
    for m in (m for m in run.metric_names if m in ref.metric_names):
        x, y = run.per_utterance[f"noisy_{m}"].to_numpy(float), ref.per_utterance[m].to_numpy(float)[order]
        bad = ~((np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= NOISY_TOL))
        if bad.any():
            i = np.argmax(bad)
            raise ResultsError(f"noisy_{m} of {ids[i]} is {x[i]:.6f}, the noisy input scores {y[i]:.6f} "
                               f"(results/{ref.track}/{ref.noise}/noisy/{ref.run_id})")


def _preset_training(adapter, preset: str | None) -> dict | None:
    """The training configuration a run of `preset` gets with no override (None: no such preset)."""
    if not preset or preset not in adapter.presets:
        return None
    try:
        return json.loads(json.dumps(train_config(adapter, preset, {})))
    except BenchError:   # a preset without a step or time budget
        return None


def _unlike_preset(run: Run, want: dict) -> list[str]:
    """The training options in which a trained run differs from its preset's training `want`."""
    trained = read_record(run.path).get("train")
    if not isinstance(trained, dict):
        return []
    # an option the run's record lacks predates it: the run trained with its default
    return sorted(k for k in want if k not in HOW_NOT_WHAT and trained.get(k, DEFAULTS.get(k)) != want[k])


def _eligible(run: Run, adapters: dict, ranked: bool = False, untraced: dict | None = None) -> list[str]:
    """Why a run may not take a row from a cleaner one (empty: it may). `untraced`: run folder -> why its
    commit cannot be traced (`derived.commit_marks`)."""
    marks = []
    if run.dirty:
        marks.append("dirty")
    if (untraced or {}).get(run.path):
        marks.append(untraced[run.path])
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
        elif (f := run.summary["weights"].get("file")) and not (run.path.parent.parent.parent.parent / f).is_file():
            marks.append(f"weights missing (weights.file {f})")
        if b.get("valid_scale") is None:
            marks.append("no validation scale recorded (budget.valid_scale)")
    if ranked and not run.summary["outputs"].get("shipped"):
        marks.append("outputs not shipped")
    return marks


def label_of(run: Run) -> str:
    preset = preset_of(run)
    name = run.model + (f" · {preset}" if preset and run.summary["model"]["trainable"] else "")
    tn = training_noise(run)
    if tn and tn != DEFAULT_PROTOCOL:
        name += f" (trained on {tn})"
    return name


def _distinguish(rows: list[Row]) -> None:
    """Rows of one set that would carry the same name (one adapter, two model configs, no preset to tell
    them apart) are named by the hash of their model config too."""
    count = Counter(r.label for r in rows)
    for r in (r for r in rows if count[r.label] > 1):
        r.label += f" · config {hashlib.sha256(model_config_key(r.run).encode()).hexdigest()[:8]}"


def _shown(path: Path, results_dir: Path) -> str:
    """A path as the board shows it: relative to the folder holding results/ (a link not followed)."""
    try:
        return (Path(results_dir.name) / Path(path).relative_to(results_dir)).as_posix()
    except ValueError:
        return rel(path)


def _reason(exc: Exception, base: Path) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]   # schema errors: the fields follow
    return " ".join(lines[:4]).replace(f"{base}/", "")


def _note_roles_and_noisy(board: Board, checked: list[tuple[Run, str, bool]]) -> None:
    """The role of each set, and the noisy input of each current set (its most recent run; `checked` is
    oldest first): the reference for every run's noisy columns."""
    for run, role, archived in checked:
        board.roles[f"{run.track}/{run.noise}"] = role
        if run.model == "noisy" and not archived:
            board.noisy[f"{run.track}/{run.noise}"] = run


def _configurations(board: Board, checked: list[tuple[Run, str, bool]], results_dir: Path) -> dict[tuple, list[Run]]:
    """The runs that pass the noisy-column and copy checks (`checked` is oldest first), grouped by (set,
    archived?, model, model config, training noise); the others are refused."""
    base = results_dir.resolve().parent
    seen: dict[str, list[Run]] = {}
    groups: dict[tuple, list[Run]] = {}
    prints: dict = {}   # each run's scores as `copy_of` compares them, computed once
    configs: dict[int, tuple] = {}   # each run's `configuration`, read once
    for run, role, archived in checked:
        key = f"{run.track}/{run.noise}"
        configs[id(run)] = config = configuration(run)
        try:
            ref = board.noisy.get(key)
            if ref is not None and not archived and run.model != "noisy":
                _check_noisy_columns(run, ref)
            for other in seen.get(key, []) if run.model != "noisy" else []:
                if configs[id(other)] == config:
                    continue   # a re-run (a deterministic model repeats its scores)
                if what := derived.copy_of(run, other, RESCORE_TOL, prints):
                    raise ResultsError(f"its {what} repeat those of results/{key}/{other.model}/{other.run_id}")
            seen.setdefault(key, []).append(run)
        except ResultsError as exc:
            board.refused.append((_shown(run.path, results_dir), _reason(exc, base)))
            continue
        set_key = f"{key} ({run.split_id})" if archived else key
        groups.setdefault((set_key, archived, *config), []).append(run)
    return groups


def retired(run: Run) -> bool:
    return (run.summary.get("weights") or {}).get("reason") == RETIRED


def _row(runs: list[Run], adapters: dict, ranked: bool, untraced: dict) -> Row | None:
    """The row of one model configuration on one set, from its runs (oldest first); a retired run is never
    one (None: every run of the configuration is retired)."""
    runs = [r for r in runs if not retired(r)]
    if not runs:
        return None
    why = [_eligible(r, adapters, ranked, untraced) for r in runs]
    ok = [r for r, w in zip(runs, why) if not w]
    chosen = (ok or runs)[-1]   # with none eligible, the most recent run, with its marks
    row = Row(chosen, label_of(chosen), [] if ok else why[-1], getattr(adapters[chosen.model].adapter, "package", None))
    scale = chosen.summary["budget"].get("valid_scale")
    if scale is not None and scale < 0:   # what SI-SDR, PESQ and STOI do not see; SNR and a listener do
        row.marks.append(f"output inverted (validation scale {scale:+.2f})")
    elif scale is not None and scale < QUIET_SCALE:
        row.marks.append(f"output {-20 * math.log10(max(scale, 1e-5)):.0f} dB too quiet "
                         f"(validation scale {scale:+.2f})")
    return row


def collect(results_dir: Path | None = None, *, cache: bool = True) -> Board:
    """The board of `results_dir`; `cache=False`: the adapters are imported, not read from their cache, and
    every summary is derived from its files (`Derivations`)."""
    results_dir = Path(results_dir or RESULTS_DIR)
    base = results_dir.resolve().parent
    adapters = catalogue(cache=cache)
    derivations = Derivations() if cache else None
    board = Board({}, {}, [], {})
    checked: list[tuple[Run, str, bool]] = []
    for d in iter_run_dirs(results_dir):
        try:
            checked.append(check_folder(d, results_dir, adapters, derivations))
        except (ResultsError, BenchError) as exc:
            board.refused.append((_shown(d, results_dir), _reason(exc, base)))
        except Exception as exc:   # noqa: BLE001 - one folder that cannot be read never stops the board
            board.refused.append((_shown(d, results_dir), f"cannot be read ({type(exc).__name__}: {str(exc)[:120]})"))
    checked.sort(key=lambda c: (c[0].summary["created"], c[0].run_id))
    _note_roles_and_noisy(board, checked)
    groups = _configurations(board, checked, results_dir)
    runs_all = [r for runs in groups.values() for r in runs]
    marks = derived.commit_marks([(r.commit, adapters[r.model].path) for r in runs_all])
    untraced = {r.path: m for r, m in zip(runs_all, marks) if m}
    for (set_key, archived, *_), runs in sorted(groups.items(), key=lambda kv: kv[0][:3]):
        ranked = not archived and board.roles.get(set_key) == "main"
        if (row := _row(runs, adapters, ranked, untraced)) is not None:
            (board.archived if archived else board.sets).setdefault(set_key, []).append(row)
    for rows in (*board.sets.values(), *board.archived.values()):
        _distinguish(rows)
    board.refused.sort()
    return board
