"""`bench compare A B`: a paired comparison of two runs, on every evaluation set both were scored on: per
metric the per-utterance differences A - B, their mean with a 95% bootstrap CI, the Wilcoxon signed-rank
test (the decision test), the paired t-test and win/loss counts, so "A beats B" is a checked claim rather
than a difference of two means. `compare_suite` pairs the two runs set by set (the ranked set first, then in
the suite's order of roles), `compare_runs` compares one set."""

from __future__ import annotations

from bench.core.errors import ResultsError
from bench.metrics.registry import METRICS
from bench.metrics.stats import paired_comparison
from bench.scoring.results import Run, load_run
from bench.scoring.suite import ROLES


def compare_runs(a: Run, b: Run, metrics: list[str] | None = None, *, alpha: float = 0.05,
                 ttest: bool = True) -> dict:
    ba, bb = a.summary["benchmark"], b.summary["benchmark"]
    for key, what in (("protocol", "protocol"), ("track", "track")):
        ka = ba[key]["sha256"] if key == "protocol" else ba[key]["manifest_sha256"]
        kb = bb[key]["sha256"] if key == "protocol" else bb[key]["manifest_sha256"]
        if ka != kb or ba[key]["name"] != bb[key]["name"]:
            raise ResultsError(f"cannot compare runs scored on different {what}s: "
                               f"{ba[key]['name']} ({ka[:12]}) vs {bb[key]['name']} ({kb[:12]})")
    if ba["split"] != bb["split"]:
        raise ResultsError(f"cannot compare a {ba['split']} run with a {bb['split']} run")
    merged = a.per_utterance.merge(b.per_utterance, on="utt_id", suffixes=("_a", "_b"))
    if len(merged) != len(a.per_utterance) or len(merged) != len(b.per_utterance):
        raise ResultsError(f"the runs scored different utterances ({len(a.per_utterance)} vs {len(b.per_utterance)}, "
                           f"{len(merged)} in common)")
    common = [m for m in METRICS if m in a.summary["metrics"] and m in b.summary["metrics"]]
    names = metrics or common
    if unknown := [m for m in names if m not in common]:
        raise ResultsError(f"metric(s) {', '.join(unknown)} not scored in both runs", hint=f"available: {', '.join(common)}")
    out = {"a": {"model": a.model, "run_id": a.run_id, "path": str(a.path)},
           "b": {"model": b.model, "run_id": b.run_id, "path": str(b.path)},
           "track": ba["track"]["name"], "protocol": ba["protocol"]["name"], "n_utterances": len(merged), "metrics": {}}
    # the verdict names the better run: by model, or by model@run-id where both runs are of one model
    name_a, name_b = ((a.model, b.model) if a.model != b.model else (f"{a.model}@{a.run_id}", f"{b.model}@{b.run_id}"))
    for m in names:
        res = paired_comparison(merged[f"{m}_a"].to_numpy(float), merged[f"{m}_b"].to_numpy(float), alpha=alpha,
                                higher_is_better=METRICS[m].higher_is_better, ttest=ttest)
        res["verdict"] = (f"{name_a if _a_is_better(res, m) else name_b} is better" if res["significant"] else
                          "no significant difference") + f" (p={res['wilcoxon_p']:.2g})"
        out["metrics"][m] = res
    return out


SUITE_METRICS = ("pesq_wb", "stoi", "si_sdr", "dnsmos_ovrl")   # the summary table's default columns


def run_sets(run: Run) -> dict[str, Run]:
    """Every evaluation set `run` was scored on ("track/noise" -> its Run), in the suite's order of roles."""
    root = run.path.parents[3]   # <root>/<track>/<noise>/<model>/<run-id>
    found = [load_run(f.parent) for f in root.glob(f"*/*/{run.path.parent.name}/{run.path.name}/summary.json")]
    found = [r for r in found if r.run_id == run.run_id and r.model == run.model]
    order = {role: i for i, role in enumerate(ROLES)}
    return {f"{r.track}/{r.noise}": r for r in sorted(found, key=lambda r: (order.get(r.role, len(order)),
                                                                         r.track, r.noise))}


def compare_suite(a: Run, b: Run, metrics: list[str] | None = None, *, alpha: float = 0.05) -> dict:
    """`compare_runs` on every set both runs were scored on; `metrics` (default: every metric both have on
    a set) are compared where both runs have them. Sets only one run has are listed, not compared."""
    sa, sb = run_sets(a), run_sets(b)
    common = [k for k in sa if k in sb]
    if not common:
        raise ResultsError(f"{a.model}@{a.run_id} and {b.model}@{b.run_id} share no evaluation set")
    if metrics:
        scored = {m for k in common for m in sa[k].summary["metrics"] if m in sb[k].summary["metrics"]}
        if unknown := [m for m in metrics if m not in scored]:
            raise ResultsError(f"metric(s) {', '.join(unknown)} not scored in both runs on any set",
                               hint=f"available: {', '.join(m for m in METRICS if m in scored)}")
    sets = []
    for k in common:
        both = [m for m in (metrics or METRICS) if m in sa[k].summary["metrics"] and m in sb[k].summary["metrics"]]
        sets.append({"set": k, "role": sa[k].role, **compare_runs(sa[k], sb[k], both, alpha=alpha)})
    return {"a": {"model": a.model, "run_id": a.run_id}, "b": {"model": b.model, "run_id": b.run_id},
            "sets": sets, "only_a": [k for k in sa if k not in sb], "only_b": [k for k in sb if k not in sa]}


def _a_is_better(res: dict, m: str) -> bool:
    """Whether A's side of the paired result `res` of metric `m` is the better one."""
    return (res["mean_diff"] > 0) == METRICS[m].higher_is_better


def decimals(m: str) -> int:
    """Decimals a value of metric `m` is shown with."""
    return 3 if m in ("stoi", "estoi") else 2


def _cell(s: dict, m: str, a: str, b: str) -> str:
    nd = decimals(m)
    who = "n.s." if not s["significant"] else a if _a_is_better(s, m) else b
    return f"{s['mean_diff']:+.{nd}f} [{s['ci_low']:+.{nd}f}, {s['ci_high']:+.{nd}f}] {who}"


def suite_rows(res: dict, metrics: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """The summary of `compare_suite`'s result as a header and rows: set, role, n, then per metric
    "A - B [CI] winner" (A, B or n.s.; "–" where the set lacks the metric)."""
    cols = list(metrics or [m for m in SUITE_METRICS if any(m in s["metrics"] for s in res["sets"])])
    rows = [[s["set"], s["role"], str(s["n_utterances"]),
             *[_cell(s["metrics"][m], m, "A", "B") if m in s["metrics"] else "–" for m in cols]] for s in res["sets"]]
    return ["set", "role", "n", *[f"Δ {METRICS[m].label}" for m in cols]], rows
