"""`bench compare A B`: a paired comparison of two runs, every set both were scored on or one set in full
(bench/verify/compare.py), as a table, markdown or JSON."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cli.args import command


def _print_suite(res: dict, metrics: list[str] | None, markdown: bool) -> None:
    from rich.table import Table

    from bench.verify.compare import suite_rows
    from bench.core.console import console

    a, b = res["a"], res["b"]
    title = (f"{a['model']}@{a['run_id']} (A) vs {b['model']}@{b['run_id']} (B): Δ = A - B, the mean of the paired "
             f"per-utterance differences [95% bootstrap CI], then which is better (Wilcoxon p < 0.05) or n.s.")
    header, rows = suite_rows(res, metrics)
    only = [f"only {who} was scored on: {', '.join(keys)}" for who, keys in (("A", res["only_a"]), ("B", res["only_b"]))
            if keys]
    if markdown:   # plain text for a README or a paper's appendix
        lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(f"`{c}`" if i == 0 else c for i, c in enumerate(r)) + " |" for r in rows]
        print("\n".join(lines + [""] + only))
        return
    t = Table(title=title + "; `--set KEY` for one set in full")
    for i, col in enumerate(header):
        t.add_column(col, no_wrap=i < 2)
    for r in rows:
        t.add_row(*r)
    console.print(t)
    for line in only:
        console.print(line)


def _print_set(res: dict, a, b) -> None:
    from bench.core.console import console, table
    from bench.metrics.registry import METRICS
    from bench.verify.compare import decimals

    t = table(f"{a.model}@{a.run_id} (A) vs {b.model}@{b.run_id} (B): {res['n_utterances']} paired utterances, "
              f"track {res['track']}, protocol {res['protocol']}",
              ("metric", "A", "B", "A - B [95% CI]", "wins/losses", "Wilcoxon p", "t-test p", "verdict"))
    for m, s in res["metrics"].items():
        nd = decimals(m)
        t.add_row(METRICS[m].label, f"{s['mean_a']:.{nd}f}", f"{s['mean_b']:.{nd}f}",
                  f"{s['mean_diff']:+.{nd}f} [{s['ci_low']:+.{nd}f}, {s['ci_high']:+.{nd}f}]",
                  f"{s['wins']}/{s['losses']}", f"{s['wilcoxon_p']:.2g}", f"{s['ttest_p']:.2g}", s["verdict"])
    console.print(t)


def cmd_compare(args) -> int:
    from bench.verify.compare import compare_runs, compare_suite, run_sets
    from bench.core.console import console
    from bench.core.errors import ResultsError
    from bench.scoring.results import find_run, load_run

    results = Path(args.results_dir) if args.results_dir else None
    a = load_run(find_run(args.a, args.track, results))
    b = load_run(find_run(args.b, args.track, results))
    if args.set is None:
        res = compare_suite(a, b, args.metrics)
    else:
        sa, sb = run_sets(a), run_sets(b)
        for run, sets in ((a, sa), (b, sb)):
            if args.set not in sets:
                raise ResultsError(f"{run.model}@{run.run_id} was not scored on set {args.set!r}",
                                   hint=f"its sets: {', '.join(sets)}")
        a, b = sa[args.set], sb[args.set]
        res = compare_runs(a, b, args.metrics)
    if args.json:
        console.print_json(json.dumps(res, default=float))
    elif args.set is None:
        _print_suite(res, args.metrics, args.markdown)
    else:
        _print_set(res, a, b)
    return 0


def register(subparsers) -> None:
    p = command(subparsers, "compare", cmd_compare, help="paired comparison of two runs on every set of the suite: "
                "per-utterance differences, CI, significance")
    p.add_argument("a", help="run folder, MODEL (latest run) or MODEL@RUN_ID")
    p.add_argument("b")
    p.add_argument("--track", default="vctk-mini", help="the track of MODEL / MODEL@RUN_ID (default: vctk-mini)")
    p.add_argument("--set", default=None, metavar="KEY",
                   help="compare on this evaluation set only, in full (e.g. vctk-mini/stft-v1); default: a summary "
                        "over every set both runs were scored on")
    p.add_argument("--metrics", nargs="*", default=None)
    p.add_argument("--results-dir", default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true", help="the summary over every set as a markdown table")
