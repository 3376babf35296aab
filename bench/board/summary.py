"""The board's first table: one row per ranked system with its paired gain on the ranked set and on every
unseen-speaker and recorded-noise set (with its place there), size, speed, and the paired test against the row
below (`bench compare` on PESQ-WB, Holm-corrected over the adjacent pairs; rows it cannot tell apart share a
rank group "=k"). The noisy input and the oracles follow, not ranked."""

from __future__ import annotations

import math

from bench.metrics.registry import METRICS
from bench.verify.compare import compare_runs

#: family-wise error rate of the adjacent-pair tests (Holm's step-down correction)
ALPHA = 0.05
OTHER_ROLES = ("cross-corpus", "recorded")
#: column names of the other sets (the set key otherwise)
SHORT = {"librispeech-test-other/stft-v1": "LibriSpeech other", "so762-test/stft-v1": "speechocean762",
         "vbdemand-sample/recorded": "VB-DEMAND, recorded noise"}
#: sorting keeps these apart: systems, the noisy input, oracles
GROUP = {"system": 0, "floor": 1, "oracle": 2}


def num(v, nd: int = 2, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:+.{nd}f}" if signed else f"{v:.{nd}f}"


def metric_label(metric: str) -> str:
    return METRICS[metric].label + (" (dB)" if METRICS[metric].unit == "dB" else "")


def md_table(cols: list[str], rows) -> list[str]:
    """A markdown table: header, rule, one line per list of cells, then a blank line."""
    return [_md_line(cols), "|" + "---|" * len(cols), *map(_md_line, rows), ""]


def _md_line(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def ordered(rows):
    """The board's order: systems by mean PESQ-WB, then the noisy input, then oracles."""
    return sorted(rows, key=lambda r: (GROUP[r.role], -((r.run.summary["metrics"].get("pesq_wb") or {}).get("mean")
                                                        or -1e9), r.label))


def budget_text(run) -> str:
    b = run.summary["budget"]
    if not b.get("trained"):
        return "no training"
    parts = [f"{b['steps']} steps" if b.get("steps") is not None else None,
             f"{b['wall_minutes']:.0f} min" if b.get("wall_minutes") is not None else None,
             b.get("hardware")]
    return ", ".join(p for p in parts if p)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone, capped at 1), in the order given."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out, running = [1.0] * m, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[i]))
        out[i] = running
    return out


def adjacent_tests(systems) -> list[dict | None]:
    """The paired PESQ-WB comparison of each ranked row with the row below (len(systems) - 1 results; None
    where one of the two has no PESQ-WB), each with its Holm-adjusted p ``p_holm`` and ``distinct``
    (p_holm < ALPHA)."""
    tests = [compare_runs(a.run, b.run, ["pesq_wb"], ttest=False)["metrics"]["pesq_wb"]
             if all("pesq_wb" in r.run.summary["metrics"] for r in (a, b)) else None
             for a, b in zip(systems, systems[1:])]
    done = [t for t in tests if t is not None]
    for t, p in zip(done, holm([t["wilcoxon_p"] for t in done])):
        t["p_holm"], t["distinct"] = p, p < ALPHA
    return tests


def rank_groups(tests: list[dict | None]) -> list[str]:
    """Rank labels of the rows: a row the test cannot tell from the row above shares its group; a group of
    several rows shows as "=k" (k: the position of its first row). An untested pair is apart."""
    firsts = [1]
    for i, t in enumerate(tests, start=2):
        firsts.append(i if t is None or t["distinct"] else firsts[-1])
    return [f"={k}" if firsts.count(k) > 1 else str(k) for k in firsts]


def test_cell(t: dict | None) -> str:
    if t is None:
        return "–"
    p = t["p_holm"]
    p = "–" if math.isnan(p) else ("<0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}")
    return (f"{t['mean_diff']:+.2f} <sub>[{t['ci_low']:+.2f}, {t['ci_high']:+.2f}]</sub> p {p} "
            f"{'**differ**' if t['distinct'] else 'tie'}")


def elsewhere(board, key: str) -> dict[str, dict]:
    """Per unseen-speaker or recorded-noise set: (model, run id) -> (Δ PESQ-WB, place among its systems)."""
    out = {}
    for _, other in sorted((OTHER_ROLES.index(role), k) for k, role in board.roles.items()
                           if role in OTHER_ROLES and k.split("/")[0] != key.split("/")[0]):
        sys = [r for r in board.rows(other) if r.role == "system" and "pesq_wb" in r.run.summary["metrics"]]
        sys.sort(key=lambda r: -(r.run.summary["metrics"]["pesq_wb"]["mean"] or -1e9))
        out[other] = {r.run_key: (r.run.summary["metrics"]["pesq_wb"]["delta"], i) for i, r in enumerate(sys, start=1)}
    return out


def elsewhere_cell(found: tuple | None, n: int) -> str:
    """(Δ PESQ-WB, place) of a row on another set of `n` systems."""
    return "not run" if found is None else f"{found[0]:+.2f} <sub>#{found[1]}/{n}</sub>"


def params_text(run) -> str:
    """Parameters as the board shows them; an external system's weights live in its package."""
    if run.summary["model"].get("external"):
        return "in package"   # the model cell names the package
    n = run.summary["model"]["parameters"]
    return "0" if n == 0 else (f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k")


def model_name(row) -> str:
    """The model cell: bold for a ranked system, its role otherwise, then what the reader must know."""
    s = row.run.summary["model"]
    name = f"**{row.label}**" if row.role == "system" else row.label
    name += {"floor": " (input, not ranked)", "oracle": " (oracle: uses the clean reference, not ranked)",
             "system": ""}[row.role]
    if s.get("external"):
        name += f" <sub>pretrained on other data (weights in package `{row.package}`)</sub>" if row.package else \
            " <sub>pretrained on other data</sub>"
    if row.marks:
        name += f" <sub>⚠ {'; '.join(row.marks)}</sub>"
    return name


def speed_cell(run) -> str:
    sp = run.summary["speed"]
    rtf = "–" if sp.get("rtf_cpu_1thread") is None else f"{sp['rtf_cpu_1thread']:.3f}"
    lat = f"{sp['latency_ms']:.0f} ms" if sp.get("causal") and sp.get("latency_ms") is not None else "offline"
    return f"{rtf} / {lat}"


def summary_table(board, key: str) -> list[str]:
    """The first table of the board (see the module docstring)."""
    rows = ordered(board.rows(key))
    tests = adjacent_tests([r for r in rows if r.role == "system"])
    groups = rank_groups(tests)
    other = elsewhere(board, key)
    cols = ["#", "model", "Δ PESQ-WB <sub>[95 % CI]</sub>", "Δ SI-SDR (dB)",
            *[f"Δ PESQ-WB {SHORT.get(k, k.split('/')[0])}" for k in other], "params", "RTF / latency",
            "vs the row below: Δ PESQ-WB [CI], Holm p"]
    body = []
    for i, r in enumerate(rows):
        m, ranked, noisy = r.run.summary["metrics"], r.role == "system", r.run.model == "noisy"
        d = m.get("pesq_wb")
        gain = "–" if noisy or not d else \
            f"{d['delta']:+.2f} <sub>[{d['delta_ci_low']:+.2f}, {d['delta_ci_high']:+.2f}]</sub>"
        sdr = "–" if noisy or "si_sdr" not in m else f"{m['si_sdr']['delta']:+.2f}"
        away = [elsewhere_cell(o.get(r.run_key), len(o)) if ranked else "–" for o in other.values()]
        body.append([groups[i] if ranked else "–", model_name(r), gain, sdr, *away, params_text(r.run),
                     speed_cell(r.run), test_cell(tests[i]) if ranked and i < len(tests) else "–"])
    return md_table(cols, body)
