"""Tests of `bench compare` (bench.verify.compare.compare_runs and the CLI): paired per-metric results,
the significance verdicts on the committed vctk-mini runs (read only), and the refusal of runs
that cannot be paired (other protocol, track, split or utterances).
"""

from __future__ import annotations

import json

import pytest
from scipy import stats

from bench.cli.main import main
from bench.verify.compare import compare_runs, compare_suite, run_sets
from bench.core.errors import ResultsError
from bench.metrics.registry import METRICS
from bench.scoring.results import RESULTS_DIR, find_run, load_run

from conftest import COMMITTED_TRACK, committed, copy_run, edit_summary

TRACK = COMMITTED_TRACK


@pytest.fixture(scope="module")
def ss():
    return load_run(committed("spectral-subtraction"))


@pytest.fixture(scope="module")
def noisy():
    return load_run(committed("noisy"))


# ---------------------------------------------------------------------------------------------
def test_paired_results_for_every_metric(ss, noisy):
    res = compare_runs(ss, noisy)
    assert res["a"]["model"] == "spectral-subtraction" and res["b"]["model"] == "noisy"
    assert res["track"] == TRACK and res["protocol"] == "stft-v1" and res["n_utterances"] == 30
    # every metric both runs have, in registry order (the committed runs predate CSIG/CBAK/COVL and DNSMOS)
    both = [m for m in METRICS if m in ss.summary["metrics"] and m in noisy.summary["metrics"]]
    assert list(res["metrics"]) == both
    assert set(res["metrics"]) >= {"pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "snr"}
    merged = ss.per_utterance.merge(noisy.per_utterance, on="utt_id", suffixes=("_a", "_b"))
    for m, r in res["metrics"].items():
        d = merged[f"{m}_a"] - merged[f"{m}_b"]
        assert r["n"] == 30 and r["n_dropped"] == 0
        assert r["mean_a"] == pytest.approx(ss.summary["metrics"][m]["mean"], abs=1e-9)
        assert r["mean_b"] == pytest.approx(noisy.summary["metrics"][m]["mean"], abs=1e-9)
        assert r["mean_diff"] == pytest.approx(d.mean(), abs=1e-12)
        assert r["ci_low"] <= r["mean_diff"] <= r["ci_high"]
        assert r["wins"] == int((d > 0).sum()) and r["losses"] == int((d < 0).sum())
        assert r["wins"] + r["losses"] + r["ties"] == 30
        assert r["wilcoxon_p"] == pytest.approx(stats.wilcoxon(merged[f"{m}_a"], merged[f"{m}_b"]).pvalue)
        assert r["ttest_p"] == pytest.approx(stats.ttest_rel(merged[f"{m}_a"], merged[f"{m}_b"]).pvalue)
        assert r["significant"] == (r["wilcoxon_p"] < 0.05)
        # the paired mean difference is the summaries' improvement over the noisy input
        assert r["mean_diff"] == pytest.approx(ss.summary["metrics"][m]["delta"], abs=1e-9)


def test_spectral_subtraction_beats_noisy_on_pesq_wb(ss, noisy):
    r = compare_runs(ss, noisy)["metrics"]["pesq_wb"]
    assert r["significant"] and r["wilcoxon_p"] < 1e-4
    assert r["mean_diff"] > 0.1 and r["ci_low"] > 0
    assert r["verdict"].startswith("spectral-subtraction is better")
    # the order of the arguments flips the sign, not the verdict
    r2 = compare_runs(noisy, ss)["metrics"]["pesq_wb"]
    assert r2["mean_diff"] == pytest.approx(-r["mean_diff"]) and r2["ci_high"] < 0
    assert r2["verdict"].startswith("spectral-subtraction is better") and r2["losses"] == r["wins"]


def test_noisy_against_itself_is_no_difference(noisy):
    res = compare_runs(noisy, noisy)
    for m, r in res["metrics"].items():
        assert r["mean_diff"] == 0.0 and (r["ci_low"], r["ci_high"]) == (0.0, 0.0), m
        assert r["wilcoxon_p"] == 1.0 and not r["significant"], m
        assert r["ties"] == 30 and r["wins"] == r["losses"] == 0
        assert r["verdict"].startswith("no significant difference")


def test_metric_subset_and_unknown_metric(ss, noisy):
    assert list(compare_runs(ss, noisy, ["stoi", "pesq_wb"])["metrics"]) == ["stoi", "pesq_wb"]
    with pytest.raises(ResultsError, match="metric.*foo.*not scored in both runs"):
        compare_runs(ss, noisy, ["foo"])


def test_alpha_changes_the_decision_only(ss, noisy):
    strict = compare_runs(ss, noisy, ["stoi"], alpha=1e-12)["metrics"]["stoi"]
    loose = compare_runs(ss, noisy, ["stoi"], alpha=0.5)["metrics"]["stoi"]
    assert strict["wilcoxon_p"] == loose["wilcoxon_p"] and strict["mean_diff"] == loose["mean_diff"]
    assert loose["significant"] == (loose["wilcoxon_p"] < 0.5) and not strict["significant"]


# ---------------------------------------------------------------------------------------------
# runs that cannot be compared
@pytest.mark.parametrize("mutate, message", [
    (lambda s: s["benchmark"]["protocol"].__setitem__("sha256", "0" * 64), "different protocols"),
    (lambda s: s["benchmark"]["protocol"].__setitem__("name", "stft-v2"), "different protocols"),
    (lambda s: s["benchmark"]["track"].__setitem__("manifest_sha256", "f" * 64), "different tracks"),
    (lambda s: s["benchmark"]["track"].__setitem__("name", "vctk"), "different tracks"),
])
def test_runs_from_another_protocol_track_or_split_are_refused(mutate, message, tmp_path, noisy):
    run = copy_run(committed("spectral-subtraction"), tmp_path / "results")
    edit_summary(run, mutate)
    other = load_run(run)  # a valid run folder in itself
    with pytest.raises(ResultsError, match=message):
        compare_runs(other, noisy)
    with pytest.raises(ResultsError, match=message):
        compare_runs(noisy, other)


def test_runs_of_different_utterances_are_refused(tmp_path, noisy):
    run = copy_run(committed("spectral-subtraction"), tmp_path / "results")
    r = load_run(run)
    r.per_utterance = r.per_utterance.iloc[:-1]
    with pytest.raises(ResultsError, match=r"scored different utterances \(29 vs 30, 29 in common\)"):
        compare_runs(r, noisy)


# ---------------------------------------------------------------------------------------------
# the command line
def test_cli_compare_json(capsys):
    assert main(["compare", "spectral-subtraction", "noisy", "--results-dir", str(RESULTS_DIR), "--json",
                 "--set", f"{TRACK}/stft-v1", "--metrics", "pesq_wb", "si_sdr"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res["metrics"]) == ["pesq_wb", "si_sdr"]
    assert res["metrics"]["pesq_wb"]["significant"] is True
    assert res["metrics"]["pesq_wb"]["verdict"].startswith("spectral-subtraction is better")


def test_cli_compare_table_accepts_run_folders_and_model_at_id(capsys):
    a = committed("noisy")
    assert main(["compare", str(a), f"noisy@{a.name}", "--results-dir", str(RESULTS_DIR), "--metrics", "snr"]) == 0
    assert "SNR" in capsys.readouterr().out


def test_cli_compare_refuses_other_protocol(tmp_path, capsys):
    results = tmp_path / "results"
    copy_run(committed("noisy"), results)
    run = copy_run(committed("spectral-subtraction"), results)
    edit_summary(run, lambda s: s["benchmark"]["protocol"].__setitem__("sha256", "0" * 64))
    assert main(["compare", "spectral-subtraction", "noisy", "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert "cannot compare runs scored on different protocols" in err and "Traceback" not in err


def test_cli_compare_unknown_run_and_tampered_run(tmp_path, capsys):
    results = tmp_path / "results"
    copy_run(committed("noisy"), results)
    assert main(["compare", "nope", "noisy", "--results-dir", str(results)]) == 2
    assert "no run found for 'nope'" in capsys.readouterr().err
    run = copy_run(committed("spectral-subtraction"), results)
    edit_summary(run, lambda s: s["metrics"]["si_sdr"].__setitem__("mean", 99.0))
    assert main(["compare", "spectral-subtraction", "noisy", "--results-dir", str(results)]) == 2
    assert "mean si_sdr" in capsys.readouterr().err  # a tampered run is never compared


# ---------------------------------------------------------------------------------------------
# every set of the suite
def test_suite_comparison_pairs_the_runs_set_by_set(ss, noisy):
    sets = run_sets(ss)
    assert next(iter(sets)) == f"{TRACK}/stft-v1" and len(sets) >= 5   # the ranked set first, then the suite
    roles = [r.role for r in sets.values()]
    assert {"main", "tier", "cross-corpus", "recorded", "diagnostic"} <= set(roles)
    assert all(r.run_id == ss.run_id and r.model == "spectral-subtraction" for r in sets.values())
    res = compare_suite(ss, noisy, ["pesq_wb", "si_sdr"])
    assert [s["set"] for s in res["sets"]] == [k for k in sets if k in run_sets(noisy)]
    for s in res["sets"]:   # each set's entry is that set's own paired comparison
        key = s["set"]
        direct = compare_runs(sets[key], run_sets(noisy)[key], ["pesq_wb", "si_sdr"])
        assert s["n_utterances"] == direct["n_utterances"] and s["role"] == sets[key].role
        assert s["metrics"]["pesq_wb"]["mean_diff"] == pytest.approx(direct["metrics"]["pesq_wb"]["mean_diff"])
    cross = [s for s in res["sets"] if s["role"] == "cross-corpus"]
    assert cross and all(s["n_utterances"] != 30 for s in cross)   # other utterances than the ranked set


def test_suite_comparison_lists_sets_only_one_run_has(tmp_path, capsys):
    results = tmp_path / "results"
    a, b = committed("spectral-subtraction"), committed("noisy")
    for run in (a, b):
        for d in RESULTS_DIR.glob(f"*/*/{run.parent.name}/{run.name}"):
            copy_run(d, results)
    dropped = next(d for d in results.glob(f"*/*/noisy/{b.name}") if d.parent.parent.name != "stft-v1")
    key = f"{dropped.parent.parent.parent.name}/{dropped.parent.parent.name}"
    import shutil
    shutil.rmtree(dropped)
    res = compare_suite(load_run(find_run("spectral-subtraction", TRACK, results)),
                        load_run(find_run("noisy", TRACK, results)))
    assert res["only_a"] == [key] and res["only_b"] == [] and key not in [s["set"] for s in res["sets"]]
    assert main(["compare", "spectral-subtraction", "noisy", "--results-dir", str(results), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert f"only A was scored on: {key}" in out
    assert sum(line.startswith("| `") for line in out.splitlines()) == len(res["sets"])
    # one set in full; a set one run lacks is refused with the sets it has
    assert main(["compare", "spectral-subtraction", "noisy", "--results-dir", str(results), "--set", key]) == 2
    err = capsys.readouterr().err
    assert f"noisy@{b.name} was not scored on set {key!r}" in err and "Traceback" not in err
    assert main(["compare", "spectral-subtraction", "noisy", "--results-dir", str(results),
                 "--metrics", "nope"]) == 2
    assert "not scored in both runs on any set" in capsys.readouterr().err


def test_latest_run_is_the_newest_by_creation_time_not_by_name(tmp_path):
    results = tmp_path / "results"
    src = committed("noisy")
    copy_run(src, results, run_id="20250101-000000-aaaaaaaa", created="2025-01-01T00:00:00+00:00")
    copy_run(src, results, run_id="zz-named-run", created="2024-06-01T00:00:00+00:00")  # sorts last by name
    assert find_run("noisy", TRACK, results).name == "20250101-000000-aaaaaaaa"
    assert find_run("noisy@zz-named-run", TRACK, results).name == "zz-named-run"
    # a run on an archived split is "latest" only where no run on the current split exists
    old = copy_run(src, results, run_id="archived", created="2030-01-01T00:00:00+00:00")
    edit_summary(old, lambda s: s["benchmark"]["track"].__setitem__("split_id", "vctk-mini-v1"))
    assert find_run("noisy", TRACK, results).name == "20250101-000000-aaaaaaaa"


def test_verdict_names_the_run_when_both_are_of_one_model(tmp_path, ss):
    other = load_run(copy_run(committed("spectral-subtraction"), tmp_path / "results", run_id="rerun"))
    other.per_utterance = other.per_utterance.assign(pesq_wb=other.per_utterance["pesq_wb"] - 0.1)
    verdict = compare_runs(ss, other, ["pesq_wb"])["metrics"]["pesq_wb"]["verdict"]
    assert verdict.startswith(f"spectral-subtraction@{ss.run_id} is better")
