"""docs/findings.md: every finding names the runs it rests on (`model@run-id`) and the `bench compare` command
that shows it, and each named run must exist, not be retired, and still be the row of its configuration on
the board's ranked set (else the finding must be checked again)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import REPO_ROOT
from bench.board import rows as board_mod
from bench.scoring.results import RESULTS_DIR, load_run

FINDINGS = REPO_ROOT / "docs" / "findings.md"
RANKED = "vctk-mini/stft-v1"
RUN_RE = re.compile(r"`?([a-z0-9][a-z0-9-]*)@([0-9A-Za-z._-]+?)`?(?=[\s`,)]|$)")


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    return {p.splitlines()[0]: p for p in parts}


def problems(text: str, board, results: Path) -> list[str]:
    """What is wrong with the findings `text` against `board` (empty: nothing)."""
    shown = {(r.run.model, r.run.run_id) for r in board.rows(RANKED)}
    out = []
    for title, body in sections(text).items():
        runs = set(RUN_RE.findall(body))
        if not runs:
            out.append(f"{title}: names no run")
        if "bench compare " not in body:
            out.append(f"{title}: names no `bench compare` command")
        for model, run_id in sorted(runs):
            folder = results / RANKED / model / run_id
            if not (folder / "summary.json").exists():
                out.append(f"{title}: {model}@{run_id} is missing ({folder})")
            elif board_mod.retired(load_run(folder)):
                out.append(f"{title}: {model}@{run_id} is retired")
            elif (model, run_id) not in shown:
                out.append(f"{title}: {model}@{run_id} is no longer its configuration's row on the board")
    return out


@pytest.fixture(scope="module")
def board():
    return board_mod.collect()


def test_every_finding_rests_on_runs_of_the_board(board):
    text = FINDINGS.read_text()
    assert len(sections(text)) >= 5
    assert problems(text, board, RESULTS_DIR) == []


def test_a_missing_superseded_or_runless_finding_is_caught(board):
    row = next(r for r in board.rows(RANKED) if r.run.model == "spectral-subtraction")
    good = f"## ok\n\nRuns: `spectral-subtraction@{row.run.run_id}`\nShown by: `bench compare a b`\n"
    assert problems(good, board, RESULTS_DIR) == []
    missing = "## gone\n\nRuns: `demucs@19990101-000000-deadbeef`\nShown by: `bench compare a b`\n"
    assert "is missing" in problems(missing, board, RESULTS_DIR)[0]
    archived = next(iter(board.archived.values()))[0].run   # a run of the superseded split: not a row of the ranked set
    old = f"## old\n\nRuns: `{archived.model}@{archived.run_id}`\nShown by: `bench compare a b`\n"
    assert problems(old, board, RESULTS_DIR)
    assert "names no run" in problems("## empty\n\nShown by: `bench compare a b`\n", board, RESULTS_DIR)[0]
