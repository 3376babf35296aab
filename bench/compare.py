"""`bench compare A B`: a paired comparison of two runs on the same track and protocol.

For every metric: the per-utterance differences A - B, their mean with a 95% bootstrap CI, the
Wilcoxon signed-rank test (the decision test) and the paired t-test, and win/loss counts, so
"A beats B" is a checked claim rather than a difference of two means.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import ResultsError
from bench.metrics import METRICS

if TYPE_CHECKING:
    from bench.results import Run


def compare_runs(a: Run, b: Run, metrics: list[str] | None = None, *, alpha: float = 0.05) -> dict:
    from bench.stats import paired_comparison   # scipy: imported when used, not to register `bench compare`

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
    unknown = [m for m in names if m not in common]
    if unknown:
        raise ResultsError(f"metric(s) {', '.join(unknown)} not scored in both runs", hint=f"available: {', '.join(common)}")
    out = {"a": {"model": a.model, "run_id": a.run_id, "path": str(a.path)},
           "b": {"model": b.model, "run_id": b.run_id, "path": str(b.path)},
           "track": ba["track"]["name"], "protocol": ba["protocol"]["name"], "n_utterances": len(merged), "metrics": {}}
    for m in names:
        res = paired_comparison(merged[f"{m}_a"].to_numpy(float), merged[f"{m}_b"].to_numpy(float), alpha=alpha,
                                higher_is_better=METRICS[m].higher_is_better)
        if res["significant"]:
            better = (res["mean_diff"] > 0) == METRICS[m].higher_is_better
            res["verdict"] = f"{a.model if better else b.model} is better (p={res['wilcoxon_p']:.2g})"
        else:
            res["verdict"] = f"no significant difference (p={res['wilcoxon_p']:.2g})"
        out["metrics"][m] = res
    return out


def cmd_compare(args) -> int:
    import json

    from rich.table import Table

    from bench.console import console
    from bench.results import find_run, load_run

    results = Path(args.results_dir) if args.results_dir else None
    a = load_run(find_run(args.a, args.track, results))
    b = load_run(find_run(args.b, args.track, results))
    res = compare_runs(a, b, args.metrics)
    if args.json:
        console.print_json(json.dumps(res, default=float))
        return 0
    t = Table(title=f"{a.model}@{a.run_id} (A) vs {b.model}@{b.run_id} (B): {res['n_utterances']} paired utterances, "
                    f"track {res['track']}, protocol {res['protocol']}")
    for col in ("metric", "A", "B", "A - B [95% CI]", "wins/losses", "Wilcoxon p", "t-test p", "verdict"):
        t.add_column(col)
    for m, s in res["metrics"].items():
        nd = 3 if m in ("stoi", "estoi") else 2
        t.add_row(METRICS[m].label, f"{s['mean_a']:.{nd}f}", f"{s['mean_b']:.{nd}f}",
                  f"{s['mean_diff']:+.{nd}f} [{s['ci_low']:+.{nd}f}, {s['ci_high']:+.{nd}f}]",
                  f"{s['wins']}/{s['losses']}", f"{s['wilcoxon_p']:.2g}", f"{s['ttest_p']:.2g}", s["verdict"])
    console.print(t)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="paired comparison of two runs: per-utterance differences, CI, significance")
    p.add_argument("a", help="run folder, MODEL (latest run) or MODEL@RUN_ID")
    p.add_argument("b")
    p.add_argument("--track", default="vctk-mini")
    p.add_argument("--metrics", nargs="*", default=None)
    p.add_argument("--results-dir", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)
