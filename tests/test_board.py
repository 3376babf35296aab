"""The board refuses forged or wrong runs (issue: every leaderboard row verifiable) and picks rows by its
printed rule. Each case builds the tampered run as a forger would (hashes and recomputable fields made
consistent) from a copy of a committed v2 run, and expects a refusal naming the field.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.board import rows as board_mod
from bench.board import leaderboard
from bench.core.errors import BenchError
from bench.scoring.results import RESULTS_DIR, per_utterance_bytes, read_per_utterance, sha256_bytes, summarize_metrics

from conftest import copy_run, edit_summary

RANKED = "vctk-mini/stft-v1"
LATER = "2999-01-01T00:00:00+00:00"


def _latest_v2(model: str) -> Path:
    runs = []
    for d in sorted((RESULTS_DIR / RANKED / model).glob("*/summary.json")):
        if json.loads(d.read_text())["schema_version"] == 2:
            runs.append(d.parent)
    if not runs:
        pytest.skip(f"no committed v2 run of {model} on {RANKED}")
    return runs[-1]


@pytest.fixture
def results(tmp_path) -> Path:
    """A results root with copies of the committed noisy and spectral-subtraction runs of the ranked set."""
    root = tmp_path / "results"
    for m in ("noisy", "spectral-subtraction"):
        copy_run(_latest_v2(m), root)
    return root


def rewrite(run: Path, df: pd.DataFrame, fix=None) -> None:
    """Replace per_utterance.csv and make every recomputable field of the summary agree with it."""
    raw = per_utterance_bytes(df)
    (run / "per_utterance.csv").write_bytes(raw)
    stored = read_per_utterance(raw)

    def consistent(s):
        if fix:
            fix(s)
        s["metrics"] = summarize_metrics(stored, list(s["metrics"]))
        s["counts"]["utterances"] = len(stored)
        s["counts"]["audio_seconds"] = round(float(stored["seconds"].sum()), 3)
        s["counts"]["failed_utterances"] = int((stored["errors"].fillna("") != "").sum())
        s["files"]["per_utterance_sha256"] = sha256_bytes(raw)

    edit_summary(run, consistent)


def _df(run: Path) -> pd.DataFrame:
    return read_per_utterance((run / "per_utterance.csv").read_bytes())


def refused(results: Path) -> dict[str, str]:
    return dict(board_mod.collect(results).refused)


def _forged(results: Path, model="spectral-subtraction", run_id="29990101-000000") -> Path:
    src = next((results / RANKED / model).iterdir())
    return copy_run(src, results, run_id=run_id, created=LATER)


def test_untouched_copies_are_accepted(results):
    b = board_mod.collect(results)
    assert b.refused == []
    assert {r.run.model for r in b.rows(RANKED)} == {"noisy", "spectral-subtraction"}


@pytest.mark.parametrize("field", ["ci_low", "ci_high", "delta_ci_low", "delta_ci_high", "noisy_mean", "n"])
def test_an_edited_statistic_is_refused(results, field):
    run = _forged(results)
    edit_summary(run, lambda s: s["metrics"]["pesq_wb"].__setitem__(field, s["metrics"]["pesq_wb"][field] - 1))
    reason = refused(results)[f"results/{RANKED}/spectral-subtraction/{run.name}"]
    assert f"{field} pesq_wb = " in reason and "per_utterance.csv gives" in reason


def test_a_valid_split_scoring_is_refused(results):
    run = _forged(results)
    rewrite(run, _df(run).iloc[:10].reset_index(drop=True),
            fix=lambda s: s["benchmark"].__setitem__("split", "valid"))
    reason = refused(results)[f"results/{RANKED}/spectral-subtraction/{run.name}"]
    assert "split" in reason


def test_a_subset_of_the_test_utterances_is_refused(results):
    run = _forged(results)
    rewrite(run, _df(run).iloc[:10].reset_index(drop=True))
    reason = refused(results)[f"results/{RANKED}/spectral-subtraction/{run.name}"]
    assert "scored 10 utterances, the test split has 30" in reason


def test_the_best_utterance_copied_30_times_is_refused(results):
    run = _forged(results)
    df = _df(run)
    best = df.loc[[df["pesq_wb"].idxmax()]]
    rewrite(run, pd.concat([df, *[best] * 30]).sort_values("utt_id").reset_index(drop=True))
    reason = refused(results)[f"results/{RANKED}/spectral-subtraction/{run.name}"]
    assert f"utterance {best['utt_id'].iloc[0]} appears 31 times" in reason


def test_a_run_of_no_adapter_is_refused(results):
    src = next((results / RANKED / "spectral-subtraction").iterdir())
    copy_run(src, results, model="my-new-model", run_id="29990101-000000", created=LATER)
    reason = refused(results)[f"results/{RANKED}/my-new-model/29990101-000000"]
    assert "model 'my-new-model' is no adapter of this repository" in reason


def test_a_copy_of_another_runs_scores_is_refused(results):
    src = next((results / RANKED / "spectral-subtraction").iterdir())
    dst = copy_run(src, results, model="oracle-irm", run_id="29990101-000000", created=LATER, oracle=True)
    (dst / "config.json").write_text(json.dumps({**json.loads((dst / "config.json").read_text()), "model": "oracle-irm"}))
    reason = refused(results)[f"results/{RANKED}/oracle-irm/29990101-000000"]
    assert "repeat those of" in reason and "spectral-subtraction" in reason


def test_noisy_columns_that_are_not_the_noisy_input_are_refused(results):
    run = _forged(results)
    df = _df(run)
    df["noisy_pesq_wb"] = df["noisy_pesq_wb"] - 0.3   # a weaker "input" makes the gain look larger
    rewrite(run, df)
    reason = refused(results)[f"results/{RANKED}/spectral-subtraction/{run.name}"]
    assert "noisy_pesq_wb of" in reason and "the noisy input scores" in reason


def test_an_untrained_budget_of_zero_steps_is_refused(results):
    run = _forged(results)
    edit_summary(run, lambda s: s["budget"].update(trained=True, steps=0))
    assert "steps" in refused(results)[f"results/{RANKED}/spectral-subtraction/{run.name}"]


def test_a_set_outside_the_suite_is_refused(results):
    src = next((results / RANKED / "noisy").iterdir())
    dst = results / "vctk-mini" / "stft-v0" / "noisy" / src.name
    shutil.copytree(src, dst)
    reason = refused(results)[f"results/vctk-mini/stft-v0/noisy/{src.name}"]
    assert "folder is results/vctk-mini/stft-v0/" in reason


def test_refusals_name_repository_relative_paths(results):
    run = _forged(results)
    edit_summary(run, lambda s: s["metrics"]["pesq_wb"].__setitem__("ci_low", 0.0))
    md = leaderboard.render(results)
    assert f"- `results/{RANKED}/spectral-subtraction/{run.name}`: " in md
    assert str(results.parent) not in md


def test_a_dirty_run_does_not_replace_a_clean_row(results):
    run = _forged(results)
    edit_summary(run, lambda s: s["provenance"].update(dirty=True, dirty_paths=["bench/scoring/score.py"]))
    rows = {r.run.model: r for r in board_mod.collect(results).rows(RANKED)}
    assert rows["spectral-subtraction"].run.run_id != run.name   # the older clean run keeps the row
    # ... until no clean run is left: then the dirty one is shown, marked
    for d in (results / RANKED / "spectral-subtraction").iterdir():
        if d.name != run.name:
            shutil.rmtree(d)
    row = {r.run.model: r for r in board_mod.collect(results).rows(RANKED)}["spectral-subtraction"]
    assert row.run.run_id == run.name and row.marks == ["dirty"]
    assert "⚠ dirty" in leaderboard.render(results)


def test_an_inverted_output_is_marked(results):
    """The trainer records the validation output's least-squares scale onto the clean target; a negative
    one (an inverted waveform, which SI-SDR, PESQ and STOI do not see) is named on the row."""
    run = next((results / RANKED / "spectral-subtraction").iterdir())
    edit_summary(run, lambda s: s["budget"].update(valid_scale=-0.05))
    row = {r.run.model: r for r in board_mod.collect(results).rows(RANKED)}["spectral-subtraction"]
    assert row.marks == ["output inverted (validation scale -0.05)"]
    assert "⚠ output inverted (validation scale -0.05)" in leaderboard.render(results)


@pytest.mark.parametrize("scale, mark", [(0.02, "output 34 dB too quiet (validation scale +0.02)"),
                                         (0.0, "output 100 dB too quiet (validation scale +0.00)"),
                                         (0.1, None), (0.9, None)])
def test_a_quiet_output_is_marked(results, scale, mark):
    """An output far below the target's level (a positive scale under 0.1: more than 20 dB) is as
    invisible to SI-SDR, PESQ and STOI as an inverted one, and as audible: named on the row."""
    run = next((results / RANKED / "spectral-subtraction").iterdir())
    edit_summary(run, lambda s: s["budget"].update(valid_scale=scale))
    row = {r.run.model: r for r in board_mod.collect(results).rows(RANKED)}["spectral-subtraction"]
    assert row.marks == ([mark] if mark else [])
    assert (f"⚠ {mark}" in leaderboard.render(results)) == bool(mark)


def test_a_run_below_its_preset_budget_is_marked_and_never_preferred():
    class Run:
        model, dirty = "demucs", False
        summary = {"budget": {"trained": True, "steps": 10, "preset": "quick", "valid_scale": 0.8}, "model": {"preset": "quick"},
                   "weights": {"shipped": True}}
        path = Path("/nonexistent")

    from bench.adapters.base import discover

    adapters = discover()
    want = adapters["demucs"].adapter.presets["quick"]["train"].get("max_steps")
    if not want:
        pytest.skip("demucs quick has no step budget")
    assert board_mod._eligible(Run(), adapters) == [f"below preset budget (10 of {want} steps)"]


def test_a_run_without_its_ranked_outputs_never_takes_a_row(results):
    """A retired run (outputs dropped) that is newer than the shipped one does not take its row back; when it
    is the only run left it is shown, marked."""
    run = _forged(results)
    shutil.rmtree(run / "enhanced")
    edit_summary(run, lambda s: s["outputs"].update(shipped=False, dir=None, format=None))
    rows = {r.run.model: r for r in board_mod.collect(results).rows(RANKED)}
    assert rows["spectral-subtraction"].run.run_id != run.name and rows["spectral-subtraction"].marks == []
    for d in (results / RANKED / "spectral-subtraction").iterdir():
        if d.name != run.name:
            shutil.rmtree(d)
    row = {r.run.model: r for r in board_mod.collect(results).rows(RANKED)}["spectral-subtraction"]
    assert row.run.run_id == run.name and row.marks == ["outputs not shipped"]


@pytest.mark.parametrize("change, mark", [
    ({}, None),
    ({"cpu_threads": 2, "num_workers": 0, "log_every": 7, "max_minutes": 30.0}, None),   # how, not what
    ({"seed": 1}, "trained unlike its preset (seed)"),
    ({"loss": {"l1": 1.0}, "lr": 0.01}, "trained unlike its preset (loss, lr)"),
])
def test_a_run_trained_unlike_its_preset_is_marked(tmp_path, change, mark):
    """A `--train-set` experiment (or a run of a preset since changed) does not stand for the preset: it never
    takes the preset's row from a run trained as the preset says."""
    from bench.adapters.base import discover

    adapters = discover()
    want = board_mod._preset_training(adapters["demucs"].adapter, "quick")
    (tmp_path / "config.json").write_text(json.dumps({"preset": "quick", "train": {**want, **change}}))

    class Run:
        model, dirty, path = "demucs", False, tmp_path
        summary = {"budget": {"trained": True, "steps": want["max_steps"], "valid_scale": 0.8}, "model": {"preset": "quick"},
                   "weights": {"shipped": True}, "outputs": {"shipped": True}, "training": {"protocol": "stft-v1"}}

    assert board_mod._eligible(Run(), adapters, ranked=True) == ([mark] if mark else [])
    # an option the run's record does not hold predates the run: it trained with the option's default
    from bench.train.options import DEFAULTS

    optional = next(k for k in want if want[k] == DEFAULTS[k] and k not in board_mod.HOW_NOT_WHAT)
    (tmp_path / "config.json").write_text(json.dumps(
        {"preset": "quick", "train": {k: v for k, v in {**want, **change}.items() if k != optional}}))
    assert board_mod._eligible(Run(), adapters, ranked=True) == ([mark] if mark else [])
    Run.summary = {**Run.summary, "weights": {"shipped": False}, "budget": {"trained": True, "steps": 5, "valid_scale": 0.8}}
    marks = board_mod._eligible(Run(), adapters)
    assert marks[0] == f"below preset budget (5 of {want['max_steps']} steps)" and marks[-1] == "weights not shipped"


def test_a_dirty_tree_is_refused_for_the_repository_results(monkeypatch):
    from bench.core import env
    from bench.run import pipeline

    monkeypatch.setattr(env, "git_state", lambda: {"commit": "abc", "dirty": True, "dirty_paths": ["bench/x.py"]})
    with pytest.raises(BenchError, match="uncommitted changes to the code"):
        pipeline._refuse_dirty(pipeline.RunOptions())
    pipeline._refuse_dirty(pipeline.RunOptions(allow_dirty=True))
    pipeline._refuse_dirty(pipeline.RunOptions(results_dir=Path("/tmp/elsewhere")))


def test_a_superseded_run_retires_its_audio_and_keeps_its_record(results, capsys):
    """`bench retire`: a run whose row a newer run of the same configuration holds drops its outputs (and
    weights), keeps its scores and hashes, and still verifies; the row's own run is refused (exit 2)."""
    from bench.cli.main import main
    from bench.verify.evidence import verify_run

    row_run = next((results / RANKED / "spectral-subtraction").iterdir())
    older = copy_run(row_run, results, run_id="20200101-000000-00000000", created="2020-01-01T00:00:00+00:00")
    df = _df(older)
    df.loc[0, "pesq_wb"] += 0.001                                   # not a copy: its own scores
    rewrite(older, df)
    before = {r.run.run_id for r in board_mod.collect(results).rows(RANKED)}
    assert row_run.name in before and older.name not in before and (older / "enhanced").is_dir()
    hashes = list(_df(older)["output_sha256"])

    assert main(["retire", str(older), "--results-dir", str(results)]) == 0
    assert not (older / "enhanced").exists() and (row_run / "enhanced").is_dir()
    s = json.loads((older / "summary.json").read_text())
    assert s["outputs"]["shipped"] is False and s["outputs"]["dir"] is None
    assert list(_df(older)["output_sha256"]) == hashes                # the hashes stay
    assert verify_run(older, results_root=results, mode="fast").ok
    assert {r.run.run_id for r in board_mod.collect(results).rows(RANKED)} == before
    assert not refused(results)

    assert main(["retire", str(row_run), "--results-dir", str(results)]) == 2
    assert "is the row of spectral-subtraction on vctk-mini/stft-v1" in capsys.readouterr().err
    assert (row_run / "enhanced").is_dir()
