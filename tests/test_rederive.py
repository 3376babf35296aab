"""`bench verify` re-derives what it can and says what it could not (issue 26): a metric whose package is
missing is reported as not re-scored, naming the extra, never as a mismatch of "inf"; a metric recorded at
another version is named."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bench import REPO_ROOT
from bench.metrics.registry import METRICS
from bench.scoring.results import load_run
from bench.verify.evidence import RESCORE_TOL, Check, compare_scores

RANKED = REPO_ROOT / "results" / "vctk-mini" / "stft-v1"


def _a_shipped_run():
    for d in sorted(RANKED.glob("spectral-subtraction/*/summary.json")):
        run = load_run(d.parent)
        if (run.summary.get("outputs") or {}).get("shipped"):
            return run
    pytest.skip("no shipped spectral-subtraction run in this checkout")


def _fresh(run, **override):
    rows = {}
    for r in run.per_utterance.to_dict("records"):
        rows[r["utt_id"]] = {"utt_id": r["utt_id"], **{m: r[m] for m in run.metric_names}, **override}
    return rows


def test_a_missing_metric_package_is_a_note_naming_the_extra(monkeypatch):
    run = _a_shipped_run()
    reason = "DNSMOS needs the optional package(s) speechmos: pip install -e '.[metrics]'"
    for m in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"):
        monkeypatch.setitem(METRICS, m, dataclasses.replace(METRICS[m], unavailable=reason))
    check = Check("x")
    compare_scores(run, _fresh(run, dnsmos_ovrl=math.nan, dnsmos_sig=math.nan, dnsmos_bak=math.nan),
                   RESCORE_TOL, check, "re-scored outputs", means=False)
    assert check.ok, check.problems
    notes = " ".join(check.notes)
    assert "dnsmos_ovrl not re-scored" in notes and "pip install -e '.[metrics]'" in notes
    assert "inf" not in notes


def test_a_changed_score_is_still_a_problem():
    run = _a_shipped_run()
    fresh = _fresh(run)
    first = next(iter(fresh))
    fresh[first]["pesq_wb"] += 0.01
    check = Check("x")
    compare_scores(run, fresh, RESCORE_TOL, check, "re-scored outputs", means=False)
    assert any("pesq_wb differs by up to 0.01" in p for p in check.problems), check.problems


def test_a_metric_recorded_at_another_version_is_named(monkeypatch):
    run = _a_shipped_run()
    run.summary["metric_versions"]["estoi"] = {"implementation": "x", "version": "0.4.1"}
    check = Check("x")
    compare_scores(run, _fresh(run), RESCORE_TOL, check, "re-scored outputs", means=False)
    assert check.ok and any("estoi recorded at version '0.4.1'" in n for n in check.notes), check.notes
