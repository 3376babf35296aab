"""What a reader derives from the code and the files instead of taking a run's word for it (issue 26;
docs/board.md): the model's flags from the discovered adapter, its parameter count from the shipped
weights' header, its training record from config.json against the recorded protocol hash and step budget,
and whether its commit exists here and holds the adapter's file. `problems` lists what refuses a folder
(the board refuses it, `bench verify` fails it); `commit_marks` says which commits cannot be traced."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench import REPO_ROOT
from bench.adapters.base import Found
from bench.adapters.catalogue import built_sizes
from bench.core.errors import BenchError
from bench.protocol import Protocol
from bench.scoring.results import Run, weights_file

#: a validation scale below this (the output more than 20 dB below the clean target) marks the row
QUIET_SCALE = 0.1
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
#: the copy check: sorted per-utterance scores this close (x the re-scoring tolerance) are the same scores
COPY_TOL_FACTOR = 5
SCORE_COLUMNS_IGNORED = ("utt_id", "seconds", "errors", "output_sha256")
NO_GIT = "commit not checked: no git repository here"


def adapter_flags(found: Found) -> dict:
    a = found.adapter
    return {"trainable": a.trainable, "causal": a.causal, "oracle": a.oracle,
            "external": bool(getattr(a, "external", False)), "pretrained_on": getattr(a, "pretrained_on", None)}


def flag_problems(run: Run, found: Found) -> list[str]:
    """model.<flag> (and budget.trained) against the adapter; a schema-1 summary lacks external/pretrained_on."""
    m, out = run.summary["model"], []
    for key, want in adapter_flags(found).items():
        if key in m and m[key] != want:
            out.append(f"model.{key} is {m[key]!r} in summary.json, adapter {run.model} says {want!r}")
    if bool(run.summary["budget"].get("trained")) != found.adapter.trainable:
        out.append(f"budget.trained is {run.summary['budget'].get('trained')!r}, adapter {run.model} is "
                   f"{'' if found.adapter.trainable else 'not '}trainable")
    return out


def safetensors_values(path: Path) -> int:
    """The number of values the tensors of a safetensors file hold, from its JSON header alone."""
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if not 0 < n < 100_000_000:
            raise ValueError(f"header length {n}")
        header = json.loads(fh.read(n))
    return sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")


def parameter_problems(run: Run, found: Found, results_root: Path) -> list[str]:
    """model.parameters against the shipped weights (the values of the state dict: parameters and buffers;
    a model with buffers is built from config.json to tell them apart)."""
    f = weights_file(run, results_root)
    if f is None or not f.is_file():   # missing: the board marks it, `bench verify` fails it
        return []
    try:
        values = safetensors_values(f)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"weights.file {run.summary['weights']['file']} has no readable safetensors header ({exc})"]
    recorded = run.summary["model"]["parameters"]
    if values == recorded:
        return []
    try:
        params, state = built_sizes(found.adapter, run.config.get("model_config", {}))
    except Exception as exc:   # noqa: BLE001 - any failure of the adapter's build is the reason shown
        return [f"model.parameters {recorded} differs from the {values} values of the shipped weights, and the "
                f"model cannot be built from config.json to tell ({type(exc).__name__})"]
    if params != recorded or state != values:
        return [f"model.parameters is {recorded}, the model of config.json has {params} (its shipped weights "
                f"{values} values)"]
    return []


@lru_cache(maxsize=None)
def _protocol_sha(name: str) -> str | None:
    try:
        return Protocol.load(name).sha256
    except BenchError:
        return None


def training_problems(run: Run) -> list[str]:
    """The training record of summary.json against config.json and the protocol it names."""
    b, cfg, t = run.summary["budget"], run.config, run.summary.get("training")
    out = []
    if cfg.get("model") != run.model:
        out.append(f"config.json is of model {cfg.get('model')!r}, not {run.model}")
    for where, v in (("model.preset", run.summary["model"].get("preset")), ("budget.preset", b.get("preset"))):
        if "preset" in cfg and v is not None and v != cfg["preset"]:
            out.append(f"{where} is {v!r}, config.json's preset is {cfg['preset']!r}")
    if not b.get("trained"):
        if t or "train" in cfg:
            out.append("training record (summary.json training / config.json train) on a run that did not train")
        return out
    train = cfg.get("train")
    if not isinstance(train, dict):
        return [*out, "config.json has no train block, summary.json says budget.trained"]
    for key in ("max_steps", "max_minutes"):
        if b.get(key) != train.get(key):
            out.append(f"budget.{key} is {b.get(key)!r}, config.json's train.{key} is {train.get(key)!r}")
    if isinstance(b.get("max_steps"), int) and (b.get("steps") or 0) > b["max_steps"]:
        out.append(f"budget.steps {b['steps']} exceeds budget.max_steps {b['max_steps']}")
    if t is None:   # schema 1: no training record beyond config.json
        return out
    if t.get("protocol") != cfg.get("protocol"):
        out.append(f"training.protocol is {t.get('protocol')!r}, config.json's protocol is {cfg.get('protocol')!r}")
    if (sha := _protocol_sha(str(t.get("protocol")))) is None:
        out.append(f"training.protocol {t.get('protocol')!r} is no protocol of this repository")
    elif sha != t.get("protocol_sha256"):
        out.append(f"training.protocol {t.get('protocol')} hashes to {sha[:12]}, training.protocol_sha256 is "
                   f"{str(t.get('protocol_sha256'))[:12]}")
    return out


def problems(run: Run, found: Found, results_root: Path) -> list[str]:
    """Everything in which a run's summary.json contradicts its code and files."""
    return [*flag_problems(run, found), *training_problems(run), *parameter_problems(run, found, results_root)]


def scale_class(scale: float | None) -> str:
    """What the board marks for a least-squares scale of output onto clean: inverted, quiet or nothing."""
    return "inverted" if scale < 0 else "quiet" if scale < QUIET_SCALE else "ok"


def scale_problem(run: Run, pairs: list[tuple[np.ndarray, np.ndarray]]) -> str | None:
    """The recorded ``budget.valid_scale`` of a trained run (what the board marks) against its outputs:
    the median least-squares scale of each output onto its clean reference must say the same (inverted,
    more than 20 dB too quiet, or neither). None when it does, or when nothing is recorded (the board
    marks that)."""
    recorded = run.summary["budget"].get("valid_scale")
    if not run.summary["budget"].get("trained") or recorded is None or not pairs:
        return None
    got = float(np.median([np.dot(y, c) / max(float(np.dot(c, c)), 1e-12) for c, y in pairs]))
    if scale_class(got) != scale_class(recorded):
        return (f"budget.valid_scale is {recorded:+.3f} ({scale_class(recorded)}), the outputs' least-squares scale "
                f"onto the clean references is {got:+.3f} ({scale_class(got)}; median of {len(pairs)})")
    return None


def _score_columns(run: Run) -> list[str]:
    return [c for c in run.per_utterance.columns if c not in SCORE_COLUMNS_IGNORED and not c.startswith("noisy_")]


@dataclass(frozen=True)
class ScorePrint:
    """What `copy_of` compares of a run, computed once: its output hashes (None: no such column), its score
    columns and each one's sorted per-utterance values (a row per column)."""

    hashes: frozenset | None
    columns: dict[str, int]
    values: np.ndarray
    all_nan: np.ndarray


def score_print(run: Run) -> ScorePrint:
    pu = run.per_utterance
    hashes = frozenset(pu["output_sha256"].dropna()) if "output_sha256" in pu else None
    columns = _score_columns(run)
    values = np.sort(np.array([pu[m].to_numpy(float) for m in columns]).reshape(len(columns), len(pu)), axis=1)
    return ScorePrint(hashes, {m: i for i, m in enumerate(columns)}, values, np.isnan(values).all(axis=1))


def copy_of(run: Run, other: Run, tol: dict, prints: dict | None = None) -> str | None:
    """What of `run` repeats `other` (None: nothing): half or more of its output hashes, or its scores as
    sets (each metric's sorted per-utterance values within `COPY_TOL_FACTOR` x its re-scoring tolerance `tol`,
    every metric both have): an extra column, another order or a change by 1e-6 do not make a new run.
    `prints`: a dict that keeps each run's `score_print` (by ``id``) across calls, for a caller that compares
    many pairs."""
    prints = {} if prints is None else prints
    for r in (run, other):
        if id(r) not in prints:
            prints[id(r)] = (r, score_print(r))   # the run is kept, so its id is not reused
    a, b = prints[id(run)][1], prints[id(other)][1]
    if a.hashes is not None and b.hashes is not None and a.hashes and 2 * len(a.hashes & b.hashes) >= len(a.hashes):
        return "output_sha256"
    if a.values.shape[1] != b.values.shape[1]:   # another number of utterances
        return None
    rows = [m for m in a.columns if m in b.columns and not a.all_nan[a.columns[m]]]
    if not rows:
        return None
    x, y = a.values[[a.columns[m] for m in rows]], b.values[[b.columns[m] for m in rows]]
    if not np.array_equal(np.isnan(x), np.isnan(y)):
        return None
    close = np.array([COPY_TOL_FACTOR * tol.get(m, tol["default"]) for m in rows])[:, None]
    diff = np.abs(x - y)
    valid = ~np.isnan(diff)   # as np.nanmax: NaN differences are left out, a row of none fails
    same = (np.where(valid, diff, 0.0) <= close).all(axis=1) & valid.any(axis=1)
    return "per-utterance scores" if same.all() else None


def _git_available(repo: Path) -> bool:
    return shutil.which("git") is not None and _is_git_repo(Path(repo).resolve())


@lru_cache(maxsize=None)
def _is_git_repo(repo: Path) -> bool:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "--git-dir"], capture_output=True).returncode == 0


def _file_of(path: Path, repo: Path) -> str | None:
    try:
        return Path(path).resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:   # an adapter outside the repository (tests): only the commit is looked up
        return None


#: (repository, query) -> True: the objects git found, asked once per process (what is in git stays; what
#: is missing is asked again, as a commit may be made meanwhile)
_IN_GIT: dict[tuple[Path, str], bool] = {}


def commit_marks(items: list[tuple[str | None, Path]], repo: Path = REPO_ROOT) -> list[str | None]:
    """For each (commit, adapter file) pair: None when the commit is in this repository and holds the file
    (`git cat-file`, one process for all), else the mark that says why not."""
    if not _git_available(repo):
        return [NO_GIT] * len(items)
    asks = [(f"{c}^{{commit}}", f"{c}:{f}" if (f := _file_of(p, repo)) else None)
            if isinstance(c, str) and COMMIT_RE.match(c) else None for c, p in items]
    queries = sorted({q for a in asks if a for q in a if q})
    if new := [q for q in queries if (repo, q) not in _IN_GIT]:
        res = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch-check"], input="".join(q + "\n" for q in new),
                             capture_output=True, text=True)
        _IN_GIT.update(((repo, q), True) for q, line in zip(new, res.stdout.splitlines()) if not line.endswith(" missing"))
    found = {q for q in queries if (repo, q) in _IN_GIT}
    out = []
    for (commit, _), ask in zip(items, asks):
        if ask is None:
            out.append(f"commit {commit!r} is no commit id" if commit else "no commit recorded")
        elif ask[0] not in found:
            out.append(f"commit {commit[:12]} is not in this repository")
        elif ask[1] is not None and ask[1] not in found:
            out.append(f"commit {commit[:12]} has no {ask[1].split(':', 1)[1]}")
        else:
            out.append(None)
    return out
