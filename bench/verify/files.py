"""`bench verify --fast`: a results folder's files against what it records (loads: schema, CSV hash, every
statistic recomputed; shipped outputs and weights against their SHA-256) and what it says against the code
(bench/verify/derived.py). Needs neither the scorer nor torch; evidence.py re-scores and re-enhances on top."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import SAMPLE_RATE
from bench.adapters.catalogue import catalogue
from bench.core.audio import read_audio, sha256_pcm16, to_pcm16
from bench.core.errors import BenchError, ResultsError
from bench.core.files import file_sha256
from bench.scoring.derivations import Derivations
from bench.scoring.results import Run, load_run, outputs_dir, rel, weights_file
from bench.verify import derived


@dataclass
class Check:
    path: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def outputs_of(run: Run) -> dict[str, Path]:
    """The shipped outputs, inside the run folder (`outputs_dir` refuses any other place)."""
    d = outputs_dir(run)
    return {} if d is None else {u: d / f"{u}.flac" for u in run.per_utterance["utt_id"]}


def check_files(run: Run, results_root: Path, check: Check) -> dict[str, np.ndarray]:
    """Shipped outputs and weights against their recorded hashes; returns the outputs read."""
    audio = {}
    want = dict(zip(run.per_utterance["utt_id"], run.per_utterance.get("output_sha256", [])))
    for utt, path in outputs_of(run).items():
        if path.is_symlink() or (path.exists() and path.resolve().parent != path.parent.resolve()):
            check.problems.append(f"{rel(path)}: a link out of the outputs folder")
            continue
        if not path.exists():
            check.problems.append(f"{rel(path)}: output missing")
            continue
        x, sr = read_audio(path, mono="error")
        if sr != SAMPLE_RATE or sha256_pcm16(to_pcm16(x)) != want.get(utt):
            check.problems.append(f"{rel(path)}: samples differ from output_sha256 in per_utterance.csv")
            continue
        audio[utt] = x
    wp = weights_file(run, results_root)   # refuses a file outside this run's folders
    if wp is not None:
        if not wp.exists():
            check.problems.append(f"{rel(wp)}: weights missing")
        elif file_sha256(wp) != run.summary["weights"]["sha256"]:
            check.problems.append(f"{rel(wp)}: SHA-256 differs from summary.json weights.sha256")
    return audio


def derive(run: Run, results_root: Path, check: Check, adapters: dict | None = None) -> None:
    """What summary.json says against the adapter, config.json and the weights (bench/verify/derived.py);
    an untraceable commit is a note (the board marks it). The adapter as the catalogue describes it: no
    model module is imported unless its sizes must be counted (`adapters`: the catalogue, read once)."""
    found = (catalogue() if adapters is None else adapters).get(run.model)
    if found is None:
        check.problems.append(f"no adapter named {run.model!r}")
        return
    check.problems += derived.problems(run, found, results_root)
    if (mark := derived.commit_marks([(run.commit, found.path)])[0]) is not None:
        check.notes.append(mark)


def verify_files(path: Path, results_root: Path, adapters: dict | None = None,
                 derivations: Derivations | None = None) -> tuple[Run | None, Check, dict[str, np.ndarray]]:
    """`bench verify --fast` of one results folder: (the run, None if it does not load; the check; the shipped
    outputs read). The re-derivations that need the scorer build on it (bench/verify/evidence.py).
    `derivations`: `load_run`'s record of the summaries derived before (None: derive every one)."""
    check = Check(rel(path))
    try:
        run = load_run(path, derivations)
    except (ResultsError, BenchError) as exc:
        check.problems.append(str(exc).splitlines()[0])
        return None, check, {}
    derive(run, results_root, check, adapters)
    return run, check, check_files(run, results_root, check)
