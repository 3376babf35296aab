"""`bench leaderboard`: render ``leaderboard.md`` from the checked results (`bench.board.rows.collect`), and check
that the committed file is current. The output depends only on results/ and the benchmark definition (no
clock), so ``--check`` compares it byte for byte. ``bench leaderboard`` also writes the listening page
(bench/board/site.py) and the diagnostics heatmap.

Layout: what each metric and each evaluation set measures; the ranked table (vctk-mini test under
stft-v1; systems ranked by mean PESQ-WB; the noisy input and oracles shown, not ranked), its second
metrics table, streaming scores, model size / speed / budget / evidence; one table per generalization set
with the rank agreement against the ranked set; the heavy-noise tier; what each model fixes (diagnostics);
archived runs of superseded splits; refused runs.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

from bench import REPO_ROOT
from bench.board.rows import Board, collect
from bench.board.site import check_site, render_site, site_dir_for
from bench.core.errors import BenchError
from bench.core.files import atomic_write_bytes
from bench.data.tracks import available_tracks, load_track
from bench.metrics.registry import METRICS
from bench.metrics.stats import rank_agreement
from bench.protocol import DEFAULT_PROTOCOL, Protocol
from bench.scoring.results import RESULTS_DIR
from bench.scoring.suite import suite

LEADERBOARD = REPO_ROOT / "leaderboard.md"
HEADER = ("<!-- GENERATED FILE: rendered by `bench leaderboard` from results/ only. Do not edit by hand; "
          "`bench leaderboard --check` (run in CI) fails when it is out of date. -->")
MAIN = ("pesq_wb", "stoi", "estoi", "si_sdr", "pesq_nb", "snr", "dnsmos_ovrl")
EXTRA = ("csig", "cbak", "covl", "dnsmos_sig", "dnsmos_bak")
GENERAL = ("pesq_wb", "stoi", "si_sdr", "csig", "covl", "dnsmos_ovrl")
WITH_DELTA = ("pesq_wb", "stoi", "estoi", "si_sdr", "dnsmos_ovrl", "csig", "cbak", "covl", "dnsmos_sig", "dnsmos_bak")
MEASURES = {
    "pesq_wb": "perceived quality, ITU-T P.862.2 wide-band", "pesq_nb": "perceived quality, P.862 narrow-band",
    "stoi": "short-time intelligibility (Taal 2011)", "estoi": "extended STOI, also for modulated noise",
    "si_sdr": "scale-invariant signal-to-distortion ratio", "snr": "signal-to-noise ratio (level and polarity count)",
    "csig": "composite: predicted signal distortion rating", "cbak": "composite: predicted background intrusiveness",
    "covl": "composite: predicted overall quality", "dnsmos_sig": "DNSMOS P.835 speech quality (neural, no reference)",
    "dnsmos_bak": "DNSMOS P.835 background quality", "dnsmos_ovrl": "DNSMOS P.835 overall quality",
}
ROLE_TITLES = {"cross-corpus": "unseen corpus and speakers, same protocol", "recorded": "real recorded noise"}


def _f(v, nd=2, signed=False):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:+.{nd}f}" if signed else f"{v:.{nd}f}"


def _nd(metric: str) -> int:
    return 3 if metric in ("stoi", "estoi") else 2


def _ci(m: dict, nd: int) -> str:
    cell = f"{_f(m['mean'], nd)} <sub>[{_f(m['ci_low'], nd)}, {_f(m['ci_high'], nd)}]</sub>"
    return cell + (f" ({m['failures']} failed)" if m["failures"] else "")


def _delta(m: dict, nd: int) -> str:
    return (f"{_f(m['delta'], nd, True)} <sub>[{_f(m['delta_ci_low'], nd, True)}, "
            f"{_f(m['delta_ci_high'], nd, True)}]</sub>")


def _label(metric: str) -> str:
    return METRICS[metric].label + (" (dB)" if METRICS[metric].unit == "dB" else "")


def ordered(rows):
    order = {"system": 0, "floor": 1, "oracle": 2}
    return sorted(rows, key=lambda r: (order[r.role], -((r.run.summary["metrics"].get("pesq_wb") or {}).get("mean")
                                                         or -1e9), r.label))


def _name(row) -> str:
    s = row.run.summary["model"]
    name = f"**{row.label}**" if row.role == "system" else row.label
    name += {"floor": " (input, floor)", "oracle": " (oracle, not ranked)", "system": ""}[row.role]
    if s.get("external"):
        name += " <sub>external, pretrained on other data</sub>"
    if row.marks:
        name += f" <sub>⚠ {'; '.join(row.marks)}</sub>"
    return name


def quality_table(rows, metrics, *, rank: bool = True) -> list[str]:
    shown = [m for m in metrics if any(m in r.run.summary["metrics"] for r in rows)]
    cols = (["#"] if rank else []) + ["model"]
    for m in shown:
        cols += [_label(m)] + ([f"Δ {_label(m).split(' (')[0]}"] if m in WITH_DELTA else [])
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    n = 0
    for r in ordered(rows):
        cells = []
        if rank:
            n += r.role == "system"
            cells.append(str(n) if r.role == "system" else "–")
        cells.append(_name(r))
        for m in shown:
            s = r.run.summary["metrics"].get(m)
            cells.append(_ci(s, _nd(m)) if s else "–")
            if m in WITH_DELTA:
                cells.append("–" if (s is None or r.run.model == "noisy") else _delta(s, _nd(m)))
        out.append("| " + " | ".join(cells) + " |")
    return out + [""]


def _budget(run) -> str:
    b = run.summary["budget"]
    if not b.get("trained"):
        return "no training"
    parts = [f"{b['steps']} steps" if b.get("steps") is not None else None,
             f"{b['wall_minutes']:.0f} min" if b.get("wall_minutes") is not None else None,
             b.get("hardware")]
    return ", ".join(p for p in parts if p)


def _weights(run) -> str:
    w = run.summary.get("weights")
    if not run.summary["model"]["trainable"]:
        return "no weights (training-free)"
    if not w:
        return "–"
    if w["shipped"]:
        return f"[{w['dtype']}, {w['bytes'] / 2**20:.1f} MiB](results/{w['file']})"
    return f"not in the repository ({w['reason']}); sha256 `{w['weights_sha256'][:12]}`"


def _commit(run) -> str:
    p = run.summary.get("provenance") or {}
    c = (p.get("commit") or "?")[:8]
    return f"`{c}`" + (" dirty" if p.get("dirty") else "")


def evidence_table(rows, links) -> list[str]:
    out = ["| model | params | RTF CPU 1 thread | causal | latency (ms) | training budget | weights | outputs | "
           "commit | date | run | speed measured on |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in ordered(rows):
        s, sp = r.run.summary, r.run.summary["speed"]
        o = s.get("outputs") or {}
        n = s["model"]["parameters"]
        params = "0" if n == 0 else (f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k")
        outputs = f"all {s['counts']['utterances']} (FLAC)" if o.get("shipped") else "hashes only"
        link = links(r.run.path)
        out.append(f"| {r.label} | {params} | {_f(sp['rtf_cpu_1thread'], 3)} | {'yes' if sp['causal'] else 'no'} | "
                   f"{_f(sp['latency_ms'], 1)} | {_budget(r.run)} | {_weights(r.run)} | {outputs} | {_commit(r.run)} | "
                   f"{s['created'][:10]} | [{r.run.run_id}]({link}/summary.json) | {sp.get('cpu') or '–'} |")
    return out + [""]


def stream_table(board, key: str) -> list[str]:
    stream = {(r.run.model, r.run.run_id): r for r in board.rows(f"{key}+stream")}
    rows = [r for r in ordered(board.rows(key)) if (r.run.model, r.run.run_id) in stream]
    if not rows:
        return []
    out = ["| model | hop (samples) | latency (ms) | RTF stream | PESQ-WB offline | PESQ-WB streaming | "
           "SI-SDR offline | SI-SDR streaming |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        st, sp = stream[(r.run.model, r.run.run_id)].run.summary["metrics"], r.run.summary["speed"]
        m = r.run.summary["metrics"]
        out.append(f"| {r.label} | {sp.get('stream_chunk_samples') or '–'} | {_f(sp['latency_ms'], 1)} | "
                   f"{_f(sp['rtf_stream'], 3)} | {_ci(m['pesq_wb'], 2)} | {_ci(st['pesq_wb'], 2)} | "
                   f"{_ci(m['si_sdr'], 2)} | {_ci(st['si_sdr'], 2)} |")
    return out + [""]


def diagnostics_table(board, key: str) -> list[str]:
    ops = [d.name for d in Protocol.load(key.split("/")[1]).diagnostics()]
    sets = {op: {(r.run.model, r.run.run_id): r for r in board.rows(f"{key.split('/')[0]}/{op}")} for op in ops}
    rows = [r for r in ordered(board.rows(key)) if r.role == "system" and
            any((r.run.model, r.run.run_id) in s for s in sets.values())]
    if not rows:
        return []
    short = [op.split(".only-")[1] for op in ops]
    out = ["| model | " + " | ".join(short) + " |", "|---|" + "---|" * len(ops)]
    for r in rows:
        cells = []
        for op in ops:
            d = sets[op].get((r.run.model, r.run.run_id))
            m = d.run.summary["metrics"] if d else {}
            cells.append("–" if not m else f"{_f(m['pesq_wb']['delta'], 2, True)} / {_f(m['si_sdr']['delta'], 2, True)}")
        out.append(f"| {r.label} | " + " | ".join(cells) + " |")
    noisy = [board.noisy.get(f"{key.split('/')[0]}/{op}") for op in ops]
    out.append("| *noisy input (PESQ-WB / SI-SDR)* | " + " | ".join(
        "–" if n is None else f"*{_f(n.summary['metrics']['pesq_wb']['mean'])} / {_f(n.summary['metrics']['si_sdr']['mean'])}*"
        for n in noisy) + " |")
    return out + [""]


def agreement_line(board, ranked: str, other: str) -> str:
    a = {(r.run.model, r.run.run_id): r.run for r in board.rows(ranked) if r.role == "system"}
    b = {(r.run.model, r.run.run_id): r.run for r in board.rows(other) if r.role == "system"}
    common = sorted(set(a) & set(b))
    if len(common) < 3:
        return f"Rank agreement with `{ranked}`: too few common systems ({len(common)})."
    rho, lo, hi = rank_agreement([a[k].per_utterance["pesq_wb"].to_numpy(float) for k in common],
                                 [b[k].per_utterance["pesq_wb"].to_numpy(float) for k in common])
    return (f"Rank agreement with `{ranked}` (PESQ-WB, {len(common)} systems): Spearman ρ = {rho:+.2f} "
            f"[{lo:+.2f}, {hi:+.2f}] (95 % CI, bootstrap over utterances of both sets).")


def _intro() -> list[str]:
    """The header, the row rule and what each metric measures."""
    proto = Protocol.load(DEFAULT_PROTOCOL)
    out = [HEADER, "", "# vctk-denoise-bench leaderboard", "",
           f"Noising protocol **{proto.name}** (sha256 `{proto.sha256[:16]}`). Every row is one results folder "
           "under `results/`, checked on every rendering (statistics recomputed from `per_utterance.csv`, frozen "
           "test utterances, noisy-input scores, no copies; `bench verify --all` re-scores the shipped outputs). "
           "**Row rule:** one row per model configuration (adapter, model config, training noise): the most recent "
           "run made from committed code that ships its outputs (ranked set) and weights, and was trained as its "
           "preset says (its step budget, no training option changed); if there is none, the most recent run, "
           "marked ⚠. Systems are ranked by mean PESQ-WB on the ranked set; the noisy input and oracles (which "
           "use the clean reference) are shown, not ranked. Scores are on 16-bit outputs. Δ = paired improvement "
           "over the noisy input, [95 % bootstrap CI]. `bench compare A B` tests a difference.", "",
           "## What the columns measure", ""]
    for m in (*MAIN, *EXTRA):
        d = METRICS[m]
        out.append(f"- **{d.label}**: {MEASURES[m]}; range {d.range[0]:g} to {d.range[1]:g}{(' ' + d.unit) if d.unit else ''}, "
                   f"higher is better; {'needs the clean reference' if d.needs_reference else 'no reference needed'}.")
    return out


def _sets_measured(name: str, evals) -> list[str]:
    out = ["", "## What each test set measures", ""]
    for ev in evals:
        t = ev.prepared.track
        what = {"main": "the ranked set", "stream": "the ranked set through the model's streamer",
                "tier": "the test split under a stronger protocol tier", "diagnostic": "the test split under one "
                "manipulation alone"}.get(ev.role, ROLE_TITLES.get(ev.role, ev.role))
        if ev.role in ("main", "cross-corpus", "recorded", "tier"):
            out.append(f"- `{ev.key}` ({ev.role}): {what}; {t.spec['description'].split('. ')[0].rstrip('.')}.")
    out.append(f"- `{name}/{DEFAULT_PROTOCOL}.only-<op>` (diagnostic): the ranked utterances under one "
               "manipulation of the protocol alone.")
    return out


def _track(board: Board, name: str, links) -> list[str]:
    """The sections of benchmark track `name`: its sets, the ranked tables, generalization, tier, diagnostics."""
    if not load_track(name).frozen:
        return ["", f"## Track `{name}`", "", f"No runs: needs the full corpus (`bench data download {name}`) and "
                "a frozen manifest (README, Data).", ""]
    evals = suite(name, Path("."))
    out = _sets_measured(name, evals)
    key = f"{name}/{DEFAULT_PROTOCOL}"
    rows = board.rows(key)
    out += ["", f"## Ranked: `{key}` (split `{load_track(name).split_id}`)", ""]
    out += quality_table(rows, MAIN) if rows else ["No runs yet.", ""]
    if rows:
        out += ["### Second metrics table (composite measures and DNSMOS components)", "",
                *quality_table(rows, EXTRA, rank=False),
                "### Streaming: scored on the streamer's output at its natural hop", "",
                *(stream_table(board, key) or ["No causal model with a streamer yet.", ""]),
                "### Size, speed, training budget and evidence", "", *evidence_table(rows, links)]
    for ev in evals:
        if ev.role in ("cross-corpus", "recorded"):
            r = board.rows(ev.key)
            out += [f"## Generalization: `{ev.key}` ({ROLE_TITLES[ev.role]})", "", agreement_line(board, key, ev.key), ""]
            out += quality_table(r, GENERAL, rank=False) if r else ["No runs yet.", ""]
        if ev.role == "tier":
            r = board.rows(ev.key)
            out += [f"## Protocol tier: `{ev.key}`", ""] + (quality_table(r, MAIN[:6]) if r else ["No runs yet.", ""])
    return out + ["## What each model fixes (diagnostics: Δ PESQ-WB / Δ SI-SDR dB on the ranked utterances under "
                  "each manipulation alone)", "", *(diagnostics_table(board, key) or ["No runs yet.", ""])]


def render(results_dir: Path | None = None, board: Board | None = None) -> str:
    board = board or collect(results_dir)
    base = Path(results_dir or RESULTS_DIR).resolve().parent

    def links(path: Path) -> str:
        return Path(path).resolve().relative_to(base).as_posix()
    out = _intro()
    for name in available_tracks():
        out += _track(board, name, links)
    if board.archived:
        out += ["## Archived runs (superseded splits; same test utterances, other training data)", ""]
        for key, rows in sorted(board.archived.items()):
            out += [f"### `{key}`", "", *quality_table(rows, ("pesq_wb", "stoi", "si_sdr"), rank=False)]
    if board.refused:
        out += ["## Runs refused by the checks (not shown above)", "",
                *[f"- `{p}`: {reason}" for p, reason in board.refused], ""]
    return "\n".join(out).rstrip() + "\n"


def write(path: Path | None = None, results_dir: Path | None = None, *, cache: bool = True) -> Path:
    path = Path(path or LEADERBOARD)
    board = collect(results_dir, cache=cache)
    atomic_write_bytes(path, render(results_dir, board).encode())
    render_site(board, site_dir_for(path))
    return path


def check(path: Path | None = None, results_dir: Path | None = None, *, cache: bool = True) -> tuple[bool, str]:
    """(up_to_date, unified diff) of the committed leaderboard and listening page against a fresh rendering."""
    path = Path(path or LEADERBOARD)
    if results_dir is not None and not Path(results_dir).is_dir():
        raise BenchError(f"--results-dir {results_dir}: no such folder")
    board = collect(results_dir, cache=cache)
    fresh = render(results_dir, board)
    current = path.read_text() if path.exists() else ""
    site = "".join(f"{p}\n" for p in check_site(board, site_dir_for(path)))
    if current == fresh and not site:
        return True, ""
    diff = "".join(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True),
                                        fromfile=f"{path.name} (on disk)", tofile=f"{path.name} (from results/)", n=1))
    return False, diff + site
