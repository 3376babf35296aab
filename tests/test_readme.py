"""README.md: at most 250 lines, and no metric number outside the block `bench leaderboard` writes between
its markers (which `bench leaderboard --check` verifies: tests/test_leaderboard.py)."""

from __future__ import annotations

import re

from bench import REPO_ROOT
from bench.board import leaderboard

README = REPO_ROOT / "README.md"
METRIC_WORDS = r"(PESQ|STOI|SI-SDR|SNR|DNSMOS|CSIG|CBAK|COVL|RTF|Δ)"


def outside_block(text: str) -> str:
    start, end = leaderboard.README_MARKERS
    head, rest = text.split(start, 1)
    return head + rest.split(end, 1)[1]


def metric_numbers(text: str) -> list[str]:
    """Numbers that read as results: a signed decimal, or a decimal within a few words after a metric name."""
    signed = re.findall(r"(?<![\w.])[+-]\d+\.\d+", text)
    near = re.findall(METRIC_WORDS + r"[^|\n.]{0,25}?\b(\d+\.\d+)", text)
    return signed + [n for _, n in near]


def test_readme_is_short_and_has_the_generated_block():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    start, end = leaderboard.README_MARKERS
    assert text.count(start) == 1 and text.count(end) == 1
    block = text.split(start, 1)[1].split(end, 1)[0]
    assert block.count("\n| ") >= 3, "the block holds the board's summary table"


def test_no_metric_number_outside_the_generated_block():
    assert metric_numbers(outside_block(README.read_text())) == []


def test_the_detector_finds_hand_typed_results():
    assert metric_numbers("Demucs reaches PESQ-WB 2.13 here") == ["2.13"]
    assert metric_numbers("a gain of +0.50 over the input") == ["+0.50"]
    assert metric_numbers("VCTK 0.92 (11.7 GB), 40.6 min") == []


def test_block_is_rewritten_and_a_stale_one_is_caught(tmp_path):
    start, end = leaderboard.README_MARKERS
    md = "# board\n\nintro\n\n| # | model |\n|---|---|\n| 1 | x |\n\n## details\n\n| a |\n|---|\n"
    readme = f"top\n{start}\n| stale |\n{end}\nbottom\n"
    new = leaderboard.with_readme_block(readme, md)
    assert new == f"top\n{start}\n| # | model |\n|---|---|\n| 1 | x |\n{end}\nbottom\n"
    assert leaderboard.with_readme_block(new, md) == new
    assert leaderboard.with_readme_block("no markers\n", md) == "no markers\n"
