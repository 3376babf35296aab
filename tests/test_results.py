"""Tests of the results format (bench.scoring.results): the summary statistics and their CIs, schema
validation, and the refusal of tampered or mismatched run folders, by `load_run` /
`check_against_benchmark` and by the leaderboard ("Runs refused").

Tampering tests work on copies (in tmp_path) of the committed vctk-mini runs under results/,
which are real runs of the frozen track; the committed files are only read.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.board import leaderboard
from bench.board.rows import collect
from bench.data.tracks import track_version
from bench.core.errors import ResultsError
from bench.protocol import Protocol
from bench.scoring.results import (check_against_benchmark, load_run, per_utterance_bytes,
                           sha256_bytes, summarize_metrics, validate_summary)
from bench.metrics.stats import bootstrap_ci

from conftest import COMMITTED_TRACK, committed, copy_committed_runs, copy_run, edit_summary

TRACK = COMMITTED_TRACK
NEW_ID = "29990101-000000"  # later than any committed run: shown if it were valid


def rewrite_per_utterance(run: Path, df: pd.DataFrame) -> None:
    """Replace per_utterance.csv and make the summary consistent with it (a well-formed run)."""
    raw = per_utterance_bytes(df)
    (run / "per_utterance.csv").write_bytes(raw)
    stored = pd.read_csv(run / "per_utterance.csv", dtype={"utt_id": str, "errors": str})

    def fix(s):
        s["metrics"] = summarize_metrics(stored, list(s["metrics"]))
        s["counts"]["utterances"] = len(stored)
        s["counts"]["audio_seconds"] = round(float(stored["seconds"].sum()), 3)
        s["files"]["per_utterance_sha256"] = sha256_bytes(raw)

    edit_summary(run, fix)


def validate(run: Path):
    """What the leaderboard applies to a run: load_run, then the checks against the current benchmark."""
    r = load_run(run)
    track = track_version(TRACK, r.summary["benchmark"]["track"]["split_id"])  # the committed runs are vctk-mini-v1
    check_against_benchmark(r, protocol=Protocol.load(), track_record=track.record(),
                            test_ids=[u.utt_id for u in track.utterances(split="test")])
    return r


# ---------------------------------------------------------------------------------------------
# summary statistics and CI math
def _frame(vals, noisy, name="m") -> pd.DataFrame:
    return pd.DataFrame({name: np.asarray(vals, float), f"noisy_{name}": np.asarray(noisy, float)})


def test_summarize_metrics_mean_ci_and_paired_delta():
    rng = np.random.default_rng(0)
    noisy = rng.normal(2.0, 0.5, 60)
    vals = noisy + rng.normal(0.3, 0.1, 60)
    s = summarize_metrics(_frame(vals, noisy), ["m"])["m"]
    assert s["mean"] == pytest.approx(vals.mean()) and s["noisy_mean"] == pytest.approx(noisy.mean())
    assert s["ci_low"] < s["mean"] < s["ci_high"]
    assert s["delta"] == pytest.approx((vals - noisy).mean())
    assert s["delta_ci_low"] < s["delta"] < s["delta_ci_high"]
    assert s["n"] == 60 and s["failures"] == 0
    # the CIs are the seeded percentile bootstrap of the values and of the paired differences
    assert (s["mean"], s["ci_low"], s["ci_high"]) == bootstrap_ci(vals, n_resamples=10000, seed=0)
    assert (s["delta"], s["delta_ci_low"], s["delta_ci_high"]) == bootstrap_ci(vals - noisy, n_resamples=10000, seed=0)
    # paired: the delta CI is much narrower than the CI of a mean (between-utterance variance removed)
    assert (s["delta_ci_high"] - s["delta_ci_low"]) < (s["ci_high"] - s["ci_low"]) / 3
    # and about the normal-theory width 2 * 1.96 * sd / sqrt(n)
    width = 2 * 1.96 * vals.std(ddof=1) / math.sqrt(vals.size)
    assert s["ci_high"] - s["ci_low"] == pytest.approx(width, rel=0.15)


def test_summarize_metrics_identity_has_zero_delta_ci():
    x = np.random.default_rng(1).normal(1.6, 0.3, 30)
    s = summarize_metrics(_frame(x, x), ["m"])["m"]
    assert (s["delta"], s["delta_ci_low"], s["delta_ci_high"]) == (0.0, 0.0, 0.0)
    assert s["mean"] == s["noisy_mean"] and s["ci_low"] <= s["mean"] <= s["ci_high"]


def test_summarize_metrics_counts_failures_and_pairs_only_complete_rows():
    vals = [1.0, np.nan, 3.0, 4.0, np.nan]
    noisy = [0.5, 1.0, np.nan, 3.0, 2.0]
    s = summarize_metrics(_frame(vals, noisy), ["m"])["m"]
    assert s["n"] == 3 and s["failures"] == 2
    assert s["mean"] == pytest.approx(8 / 3)
    assert s["noisy_mean"] == pytest.approx(6.5 / 4)
    assert s["delta"] == pytest.approx(((1.0 - 0.5) + (4.0 - 3.0)) / 2)  # rows 0 and 3 are paired
    all_failed = summarize_metrics(_frame([np.nan] * 3, [1.0, 2.0, 3.0]), ["m"])["m"]
    assert all_failed["mean"] is None and all_failed["ci_low"] is None and all_failed["delta"] is None
    assert all_failed["n"] == 0 and all_failed["failures"] == 3 and all_failed["noisy_mean"] == pytest.approx(2.0)


def test_committed_runs_have_consistent_cis():
    for model in ("noisy", "spectral-subtraction", "oracle-psm", "oracle-irm"):
        r = load_run(committed(model))
        for m, s in r.summary["metrics"].items():
            assert s["ci_low"] <= s["mean"] <= s["ci_high"], (model, m)
            assert s["delta_ci_low"] <= s["delta"] <= s["delta_ci_high"], (model, m)
            assert s["mean"] - s["noisy_mean"] == pytest.approx(s["delta"], abs=1e-9), (model, m)
    noisy = load_run(committed("noisy")).summary["metrics"]
    assert all((s["delta"], s["delta_ci_low"], s["delta_ci_high"]) == (0.0, 0.0, 0.0) for s in noisy.values())


# ---------------------------------------------------------------------------------------------
# schema
def test_committed_summaries_validate_against_the_schema():
    for model in ("noisy", "spectral-subtraction", "oracle-psm", "oracle-irm"):
        path = committed(model) / "summary.json"
        validate_summary(json.loads(path.read_text()), str(path))


@pytest.mark.parametrize("mutate, where", [
    (lambda s: s.pop("counts"), "'counts' is a required property"),
    (lambda s: s["model"].pop("oracle"), "model: 'oracle' is a required property"),
    (lambda s: s["model"].__setitem__("parameters", "0"), "model/parameters"),
    (lambda s: s["metrics"]["pesq_wb"].__setitem__("n", 30.5), "metrics/pesq_wb/n"),
    (lambda s: s["metrics"]["pesq_wb"].__setitem__("mean", "1.64"), "metrics/pesq_wb/mean"),
    (lambda s: s["budget"].__setitem__("steps", -1), "budget/steps"),
    (lambda s: s.__setitem__("unexpected", 1), "Additional properties"),
    (lambda s: s["model"].__setitem__("name", "Bad Name"), "model/name"),
    (lambda s: s["benchmark"]["protocol"].__setitem__("sha256", "xyz"), "benchmark/protocol/sha256"),
    (lambda s: s["benchmark"].__setitem__("split", "train"), "benchmark/split"),
    (lambda s: s["files"].__setitem__("per_utterance", "other.csv"), "files/per_utterance"),
    (lambda s: s.__setitem__("created", "yesterday"), "created"),
    (lambda s: s.__setitem__("metrics", {}), "metrics"),
])
def test_schema_violations_are_refused_with_the_field(mutate, where):
    s = json.loads((committed("noisy") / "summary.json").read_text())
    mutate(s)
    with pytest.raises(ResultsError, match="does not validate against the results schema") as ei:
        validate_summary(s, "x/summary.json")
    assert where in str(ei.value) and "x/summary.json" in str(ei.value)


# ---------------------------------------------------------------------------------------------
# tampered and mismatched runs: refused by load_run / check_against_benchmark and by the leaderboard
def _tamper_csv(run: Path):
    raw = (run / "per_utterance.csv").read_text().splitlines(keepends=True)
    cells = raw[1].split(",")
    cells[2] = f"{float(cells[2]) + 0.5:.6f}"  # a better PESQ-WB for the first utterance
    raw[1] = ",".join(cells)
    (run / "per_utterance.csv").write_text("".join(raw))


def _drop_utterance(run: Path):
    df = pd.read_csv(run / "per_utterance.csv", dtype={"utt_id": str, "errors": str})
    rewrite_per_utterance(run, df.iloc[1:].reset_index(drop=True))


def _extra_utterance(run: Path):
    df = pd.read_csv(run / "per_utterance.csv", dtype={"utt_id": str, "errors": str})
    extra = df.iloc[:1].copy()
    extra["utt_id"] = "p232_999"
    rewrite_per_utterance(run, pd.concat([df, extra]).sort_values("utt_id").reset_index(drop=True))


def _other_protocol(run: Path):
    edit_summary(run, lambda s: s["benchmark"]["protocol"].__setitem__("sha256", "0" * 64))


def _other_protocol_name(run: Path):
    edit_summary(run, lambda s: s["benchmark"]["protocol"].__setitem__("name", "stft-v0"))


def _other_manifest(run: Path):
    edit_summary(run, lambda s: s["benchmark"]["track"].__setitem__("manifest_sha256", "f" * 64))


def _other_split_id(run: Path):
    edit_summary(run, lambda s: s["benchmark"]["track"].__setitem__("split_id", "vctk-mini-v0"))


TAMPERINGS = {
    # name: (tamper, message fragment, file named in the message)
    "per_utterance.csv edited": (_tamper_csv, "SHA-256 differs from the one recorded", "per_utterance.csv"),
    "summary mean edited": (lambda r: edit_summary(r, lambda s: s["metrics"]["pesq_wb"].__setitem__(
        "mean", s["metrics"]["pesq_wb"]["mean"] + 0.01)), "mean pesq_wb = ", "summary.json"),
    "summary count edited": (lambda r: edit_summary(r, lambda s: s["counts"].__setitem__("utterances", 31)),
                             "summary counts 31 utterances, per_utterance.csv has 30", ""),
    "summary metric column missing": (lambda r: edit_summary(r, lambda s: s["metrics"].__setitem__(
        "foo", s["metrics"]["snr"])), "per_utterance.csv has no column 'foo'", ""),
    "missing field": (lambda r: edit_summary(r, lambda s: s.pop("speed")),
                      "does not validate against the results schema", "summary.json"),
    "wrong type": (lambda r: edit_summary(r, lambda s: s["counts"].__setitem__("utterances", "30")),
                   "does not validate against the results schema", "summary.json"),
    "not JSON": (lambda r: (r / "summary.json").write_text("{ not json"), "not valid JSON", "summary.json"),
    "per_utterance.csv deleted": (lambda r: (r / "per_utterance.csv").unlink(), "missing", "per_utterance.csv"),
    "other protocol hash": (_other_protocol, "scored under protocol stft-v1 (000000000000)", ""),
    "other protocol name": (_other_protocol_name, "scored under protocol stft-v0", ""),
    "other manifest hash": (_other_manifest, "(manifest ffffffffffff)", ""),
    "other split id": (_other_split_id, "scored on split vctk-mini-v0", ""),
    "test utterance missing": (_drop_utterance, "scored 29 utterances, the test split has 30 (1 missing, 0 unexpected)", ""),
    "unexpected utterance": (_extra_utterance, "scored 31 utterances, the test split has 30 (0 missing, 1 unexpected)", ""),
}


@pytest.mark.parametrize("kind", list(TAMPERINGS))
def test_tampered_run_is_refused(kind, tmp_path):
    tamper, fragment, fname = TAMPERINGS[kind]
    run = copy_run(committed("noisy"), tmp_path / "results")
    validate(run)  # the untouched copy is accepted
    tamper(run)
    with pytest.raises(ResultsError) as ei:
        validate(run)
    msg = str(ei.value)
    assert fragment in msg, msg
    assert str(run) in msg and fname in msg, msg  # names the run folder and the file


def test_untampered_rewrite_is_accepted(tmp_path):
    """The helpers that build consistent runs do not themselves break a run (guards the tests above)."""
    run = copy_run(committed("spectral-subtraction"), tmp_path / "results")
    df = pd.read_csv(run / "per_utterance.csv", dtype={"utt_id": str, "errors": str})
    rewrite_per_utterance(run, df)
    r = validate(run)
    assert r.summary["metrics"] == load_run(committed("spectral-subtraction")).summary["metrics"]


@pytest.fixture
def board_results(tmp_path) -> Path:
    """A results dir holding copies of every committed run of the ranked vctk-mini set."""
    return copy_committed_runs(tmp_path / "results")


RANKED = f"{TRACK}/stft-v1"


def _tables(md: str) -> tuple[str, str]:
    """(the rendered leaderboard without its refused section, the refused section); the glossary follows it."""
    head, _, rest = md.partition("## Runs refused by the checks (not shown above)")
    refused, sep, tail = rest.partition("\n## ")
    return head + (f"## {tail}" if sep else ""), refused


@pytest.mark.parametrize("kind", list(TAMPERINGS))
def test_leaderboard_lists_tampered_runs_as_refused(kind, board_results):
    tamper, fragment, _ = TAMPERINGS[kind]
    baseline = leaderboard.render(board_results)
    run = copy_run(committed("noisy"), board_results, run_id=NEW_ID, created="2999-01-01T00:00:00+00:00")
    tamper(run)
    md = leaderboard.render(board_results)
    tables, refused = _tables(md)
    rel = f"results/{RANKED}/noisy/{NEW_ID}"
    assert f"- `{rel}`: " in refused
    line = next(line for line in refused.splitlines() if line.startswith(f"- `{rel}`"))
    # the reason starts with the first line of the error (the board first checks that the folder says
    # what the summary says: a run claiming another protocol sits in the wrong folder)
    assert fragment in line or (kind == "other protocol name" and "summary.json says" in line), line
    assert NEW_ID not in tables  # not shown: the older valid noisy run is
    assert tables.rstrip() == baseline.rstrip()
    board = collect(board_results)
    assert [p for p, _ in board.refused] == [rel]
    assert NEW_ID not in [r.run.run_id for r in board.rows(RANKED)]


def test_leaderboard_shows_the_newest_valid_run_instead(board_results):
    run = copy_run(committed("noisy"), board_results, run_id=NEW_ID, created="2999-01-01T00:00:00+00:00")
    validate(run)
    tables, refused = _tables(leaderboard.render(board_results))
    assert f"[{NEW_ID}](results/{RANKED}/noisy/{NEW_ID}/summary.json)" in tables
    assert f"[{committed('noisy').name}]" not in tables
    assert refused == ""


def test_leaderboard_refuses_a_run_in_the_wrong_folder(board_results):
    copy_run(committed("noisy"), board_results, run_id=NEW_ID)
    # move it under another model's folder: the folder and summary.json disagree
    src = board_results / RANKED / "noisy" / NEW_ID
    dst = board_results / RANKED / "spectral-subtraction" / NEW_ID
    shutil.move(src, dst)
    (path, reason), = collect(board_results).refused
    assert path == f"results/{RANKED}/spectral-subtraction/{NEW_ID}" and "folder is results/" in reason
    assert f"summary.json says results/{RANKED}/noisy/" in reason


def test_leaderboard_refuses_runs_of_an_unfrozen_or_unknown_track(board_results):
    src = committed("noisy")
    for track in ("vctk", "no-such-track"):
        dst = board_results / track / "stft-v1" / "noisy" / src.name
        shutil.copytree(src, dst)
        edit_summary(dst, lambda s: s["benchmark"]["track"].__setitem__("name", track))
    refused = dict(collect(board_results).refused)
    assert "track vctk has no frozen manifest" in refused[f"results/vctk/stft-v1/noisy/{src.name}"]
    assert "no-such-track" in refused[f"results/no-such-track/stft-v1/noisy/{src.name}"]
    md = leaderboard.render(board_results)
    assert f"- `results/vctk/stft-v1/noisy/{src.name}`: " in md
