"""Tests of the leaderboard (bench.leaderboard, `bench leaderboard [--check]`): deterministic
rendering from results/ alone, the CI check of the committed leaderboard.md, and the ranking
rules (real systems ranked by PESQ-WB; the noisy input and oracles shown but never ranked).

Runs are copies of the committed vctk-mini runs (real runs of the frozen track) placed in a
temporary results dir, plus runs derived from them with consistent summaries.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench import leaderboard
from bench.cli import main
from bench.leaderboard import LEADERBOARD
from bench.results import (RESULTS_DIR, dump_json, load_run, per_utterance_bytes, sha256_bytes,
                           summarize_metrics)

from conftest import COMMITTED_TRACK, committed, copy_committed_runs, copy_run, edit_summary

TRACK = COMMITTED_TRACK


def derive_run(src: Path, results: Path, model: str, change, metrics: list[str] | None = None, **model_fields) -> Path:
    """A new, internally consistent run of `model`: src's per-utterance table changed by `change(df)`."""
    dst = copy_run(src, results, model=model, **model_fields)
    df = pd.read_csv(dst / "per_utterance.csv", dtype={"utt_id": str, "errors": str})
    change(df)
    raw = per_utterance_bytes(df)
    (dst / "per_utterance.csv").write_bytes(raw)
    stored = pd.read_csv(dst / "per_utterance.csv", dtype={"utt_id": str, "errors": str})
    s = json.loads((dst / "summary.json").read_text())
    s["metrics"] = summarize_metrics(stored, metrics or list(s["metrics"]))
    s["metric_versions"] = {m: v for m, v in s["metric_versions"].items() if m in s["metrics"]}
    s["files"]["per_utterance_sha256"] = sha256_bytes(raw)
    (dst / "summary.json").write_bytes(dump_json(s))
    load_run(dst)
    return dst


@pytest.fixture
def results(tmp_path) -> Path:
    """tmp_path/results holding copies of every committed vctk-mini run (named `results` as in the repo)."""
    return copy_committed_runs(tmp_path / "results")


BASE_MODELS = ("noisy", "spectral-subtraction", "oracle-irm", "oracle-psm")


@pytest.fixture
def base_results(tmp_path) -> Path:
    """tmp_path/results with the latest committed run of the training-free baselines only (a fixed set)."""
    out = tmp_path / "results"
    for model in BASE_MODELS:
        copy_run(committed(model), out)
    return out


def quality_rows(md: str) -> list[list[str]]:
    """The rows of the vctk-mini quality table as lists of cells."""
    section = md.split(f"## Track `{TRACK}`", 1)[1].split("### Quality", 1)[1].split("###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # skip the header
    return [[c.strip() for c in line.strip("|").split("|")] for line in rows]


def speed_models(md: str) -> list[str]:
    section = md.split(f"## Track `{TRACK}`", 1)[1].split("### Model size, speed and training budget", 1)[1]
    section = section.split("###", 1)[0]
    return [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")][1:]


# ---------------------------------------------------------------------------------------------
# the committed leaderboard (what CI checks)
def test_committed_leaderboard_is_up_to_date():
    ok, diff = leaderboard.check()
    assert ok, "leaderboard.md is out of date with results/; run `bench leaderboard`:\n" + diff
    assert leaderboard.check(LEADERBOARD, RESULTS_DIR) == (True, "")


def test_committed_leaderboard_check_via_cli(capsys):
    assert main(["leaderboard", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_committed_runs_are_all_shown():
    board = leaderboard.collect()
    assert board.refused == {}
    assert sorted({r.model for r in board.shown[TRACK]}) == sorted(p.name for p in (RESULTS_DIR / TRACK).iterdir())
    keys = [(r.model, leaderboard.model_config_key(r)) for r in board.shown[TRACK]]
    assert len(keys) == len(set(keys))  # one row per model configuration


# ---------------------------------------------------------------------------------------------
# rendering
def test_render_is_deterministic_and_depends_only_on_results(results):
    first = leaderboard.render(results)
    assert leaderboard.render(results) == first
    # a copy of results/ renders exactly the committed file (nothing depends on the clock or the folder)
    assert first == LEADERBOARD.read_text()
    assert first.startswith(leaderboard.HEADER + "\n")


def test_regenerating_reproduces_the_file(results, tmp_path):
    out = tmp_path / "leaderboard.md"
    leaderboard.write(out, results)
    assert out.read_text() == leaderboard.render(results)
    assert leaderboard.check(out, results) == (True, "")
    leaderboard.write(out, results)  # idempotent
    assert out.read_text() == LEADERBOARD.read_text()


def test_cli_check_detects_a_hand_edit(results, tmp_path, capsys):
    out = tmp_path / "board.md"
    args = ["--results-dir", str(results), "--output", str(out)]
    assert main(["leaderboard", *args]) == 0
    assert main(["leaderboard", "--check", *args]) == 0
    capsys.readouterr()
    text = out.read_text()
    edited = text.replace("noisy (input, floor)", "my-model (input, floor)")
    assert edited != text
    out.write_text(edited)
    assert main(["leaderboard", "--check", *args]) == 1
    err = capsys.readouterr().err
    assert "out of date" in err and "my-model" in err  # the diff is shown
    assert main(["leaderboard", *args]) == 0  # regenerating fixes it
    assert main(["leaderboard", "--check", *args]) == 0


def test_cli_check_fails_when_the_file_is_missing_or_results_change(results, tmp_path):
    out = tmp_path / "board.md"
    args = ["--results-dir", str(results), "--output", str(out)]
    assert main(["leaderboard", "--check", *args]) == 1
    assert main(["leaderboard", *args]) == 0
    shutil.rmtree(results / TRACK / "oracle-irm")  # a run removed from results/: the file is stale
    assert main(["leaderboard", "--check", *args]) == 1


def test_cli_write_reports_refused_runs(results, tmp_path, capsys):
    run = copy_run(committed("noisy"), results, run_id="29990101-000000")
    (run / "per_utterance.csv").write_text((run / "per_utterance.csv").read_text().replace("1.", "2.", 1))
    assert main(["leaderboard", "--results-dir", str(results), "--output", str(tmp_path / "b.md")]) == 0
    err = capsys.readouterr().err
    assert "refused" in err and "29990101-000000" in err
    assert "SHA-256 differs" in (tmp_path / "b.md").read_text()


def test_empty_results_dir(tmp_path):
    md = leaderboard.render(tmp_path / "results")
    track = md.split(f"## Track `{TRACK}`", 1)[1]
    assert "No runs yet." in track and "### Quality" not in track


# ---------------------------------------------------------------------------------------------
# ranking
def test_committed_ranking():
    """In the committed file: systems first, ranked 1..k by PESQ-WB; then the noisy input and the oracles, unranked."""
    board = leaderboard.collect()
    oracles = {r.model for r in board.shown[TRACK] if r.summary["model"]["oracle"]}
    rows = quality_rows(LEADERBOARD.read_text())
    names = [r[1].strip("*").split(" (")[0] for r in rows]
    systems = [r for r, n in zip(rows, names) if n != "noisy" and n not in oracles]
    assert [r[0] for r in systems] == [str(i) for i in range(1, len(systems) + 1)]
    assert rows[: len(systems)] == systems and "spectral-subtraction" in names[: len(systems)]
    pesq = [float(r[2].split()[0]) for r in systems]
    assert pesq == sorted(pesq, reverse=True)
    rest = rows[len(systems):]
    assert rest[0][:2] == ["–", "noisy (input, floor)"]
    assert [r[1] for r in rest[1:]] == [f"{n} (oracle, not ranked)" for n in names[len(systems) + 1:]]
    assert {r[0] for r in rest} == {"–"} and set(names[len(systems) + 1:]) == oracles
    assert {"oracle-psm", "oracle-irm"} <= oracles


def test_systems_are_ranked_by_pesq_wb_and_noisy_and_oracles_are_not(base_results):
    results = base_results
    ss, noisy = committed("spectral-subtraction"), committed("noisy")

    def add(delta):
        def change(df):
            df["pesq_wb"] = df["pesq_wb"] + delta
        return change

    derive_run(ss, results, "better-sys", add(0.5), kind="submission")     # PESQ-WB 1.84 + 0.5
    derive_run(noisy, results, "worse-sys", add(-0.3), kind="submission")  # below the noisy input
    # an oracle with the best scores of all is still not ranked (the flag, not the name, decides)
    derive_run(ss, results, "cheat", add(2.7), kind="submission", oracle=True)
    md = leaderboard.render(results)
    rows = quality_rows(md)
    assert [r[:2] for r in rows] == [
        ["1", "**better-sys**"], ["2", "**spectral-subtraction**"], ["3", "**worse-sys**"],
        ["–", "noisy (input, floor)"],
        ["–", "cheat (oracle, not ranked)"], ["–", "oracle-psm (oracle, not ranked)"],
        ["–", "oracle-irm (oracle, not ranked)"]]
    pesq = [float(r[2].split()[0]) for r in rows]
    assert pesq[:3] == sorted(pesq[:3], reverse=True) and pesq[4:] == sorted(pesq[4:], reverse=True)
    assert speed_models(md) == ["better-sys", "spectral-subtraction", "worse-sys", "noisy", "cheat", "oracle-psm",
                                "oracle-irm"]
    noisy_row = rows[3]
    assert noisy_row[3] == "–" and noisy_row[5] == "–"  # no improvement column for the input itself
    assert rows[0][3].startswith("+0.70 ")  # Δ PESQ-WB of better-sys: 0.20 + 0.5


def test_a_run_without_pesq_is_ranked_last_among_systems(base_results):
    """A valid run may score a subset of the metrics: it is listed with '–' cells, after the systems with PESQ-WB."""
    results = base_results
    derive_run(committed("spectral-subtraction"), results, "sdr-only", lambda df: None, metrics=["si_sdr", "snr"],
               kind="submission")
    rows = quality_rows(leaderboard.render(results))
    row = next(r for r in rows if r[1] == "**sdr-only**")
    assert row[0] == "2" and rows[0][1] == "**spectral-subtraction**"
    assert row[2] == "–" and row[3] == "–" and row[8] != "–"


def test_most_recent_valid_run_of_each_model_is_shown(results):
    new = copy_run(committed("spectral-subtraction"), results, run_id="29990101-000000",
                   created="2999-01-01T00:00:00+00:00")
    old = committed("spectral-subtraction").name
    md = leaderboard.render(results)
    assert "[29990101-000000](results/vctk-mini/spectral-subtraction/29990101-000000/summary.json)" in md
    assert f"[{old}]" not in md
    # an older run id with a later `created` still wins: runs are ordered by their creation time
    shutil.rmtree(new)
    copy_run(committed("spectral-subtraction"), results, run_id="19990101-000000", created="2999-01-01T00:00:00+00:00")
    assert "[19990101-000000]" in leaderboard.render(results) and f"[{old}]" not in leaderboard.render(results)


def _set_model_config(run_dir: Path, model_config: dict, preset) -> None:
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["model_config"], cfg["preset"] = model_config, preset
    (run_dir / "config.json").write_text(json.dumps(cfg))

    def set_preset(s):
        s["model"]["preset"] = s["budget"]["preset"] = preset

    edit_summary(run_dir, set_preset)


def test_each_model_configuration_gets_its_own_row(base_results):
    """Runs of one adapter with different model configs are different systems: one row each, named by
    preset; a run that lost its preset takes the preset of the runs with the same config; otherwise a hash."""
    results = base_results
    ss = committed("spectral-subtraction")
    small = copy_run(ss, results, model="net", run_id="a-small", created="2026-01-01T00:00:00+00:00")
    _set_model_config(small, {"hidden": 8}, "quick")
    big = copy_run(ss, results, model="net", run_id="b-big", created="2026-01-02T00:00:00+00:00")
    _set_model_config(big, {"hidden": 64}, "full")
    md = leaderboard.render(results)
    assert {"**net · quick**", "**net · full**"} <= {r[1] for r in quality_rows(md)}
    assert "[a-small]" in md and "[b-big]" in md
    # a later run of the small config without a preset replaces a-small and is still called quick
    later = copy_run(ss, results, model="net", run_id="c-small-longer", created="2026-01-03T00:00:00+00:00")
    _set_model_config(later, {"hidden": 8}, None)
    md = leaderboard.render(results)
    assert "[c-small-longer]" in md and "[a-small]" not in md and "**net · quick**" in md
    # a third config with no preset anywhere is named by the hash of its config
    odd = copy_run(ss, results, model="net", run_id="d-odd", created="2026-01-04T00:00:00+00:00")
    _set_model_config(odd, {"hidden": 16}, None)
    names = {r[1] for r in quality_rows(leaderboard.render(results))}
    assert any(n.startswith("**net · config ") for n in names) and "**net · full**" in names
    # a model shown once keeps its plain name
    assert "**spectral-subtraction**" in names


def test_speed_columns_say_which_machine_measured_them(results):
    md = leaderboard.render(results)
    assert "| speed measured on |" in md
    env = json.loads((committed("noisy") / "env.json").read_text())
    assert f"{env['cpu']}, {env['cpu_count']}-core machine" in md
