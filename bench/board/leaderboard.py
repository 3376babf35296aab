"""`bench leaderboard`: render ``leaderboard.md`` (and the listening page) from the checked board, and check
that the committed files are current. The output depends only on results/ and the benchmark definition (no
clock), so ``--check`` compares it byte for byte. No table has more than 9 columns but the summary."""

from __future__ import annotations

import difflib
import math
from pathlib import Path

from bench import REPO_ROOT
from bench.board.rows import Board, collect
from bench.board.site import check_site, render_site, site_dir_for
from bench.board.site_media import MediaCache, drawn
from bench.board.summary import (ALPHA, budget_text, md_table, metric_label, model_name, num, ordered, params_text,
                                 summary_table)
from bench.core.errors import BenchError
from bench.core.files import atomic_write_bytes
from bench.data.tracks import available_tracks, load_track
from bench.metrics.registry import METRICS
from bench.metrics.stats import rank_agreement
from bench.protocol import DEFAULT_PROTOCOL, Protocol
from bench.scoring.results import RESULTS_DIR
from bench.scoring.suite import suite
from bench.verify.compare import decimals

LEADERBOARD = REPO_ROOT / "leaderboard.md"
HEADER = ("<!-- GENERATED FILE: rendered by `bench leaderboard` from results/ only. Do not edit by hand; "
          "`bench leaderboard --check` (run in CI) fails when it is out of date. -->")
MAIN = ("pesq_wb", "stoi", "estoi", "si_sdr", "pesq_nb", "snr", "dnsmos_ovrl")
EXTRA = ("csig", "cbak", "covl", "dnsmos_sig", "dnsmos_bak")
GENERAL = ("pesq_wb", "stoi", "si_sdr", "csig", "covl", "dnsmos_ovrl")
MEASURES = {
    "pesq_wb": "perceived quality, ITU-T P.862.2 wide-band", "pesq_nb": "perceived quality, P.862 narrow-band",
    "stoi": "short-time intelligibility (Taal 2011)", "estoi": "extended STOI, also for modulated noise",
    "si_sdr": "scale-invariant signal-to-distortion ratio", "snr": "signal-to-noise ratio (level and polarity count)",
    "csig": "composite: predicted signal distortion rating", "cbak": "composite: predicted background intrusiveness",
    "covl": "composite: predicted overall quality", "dnsmos_sig": "DNSMOS P.835 speech quality (neural, no reference)",
    "dnsmos_bak": "DNSMOS P.835 background quality", "dnsmos_ovrl": "DNSMOS P.835 overall quality",
}
ROLE_TITLES = {"cross-corpus": "unseen corpus and speakers, same protocol", "recorded": "real recorded noise"}


def _ci(m: dict, nd: int) -> str:
    cell = f"{num(m['mean'], nd)} <sub>[{num(m['ci_low'], nd)}, {num(m['ci_high'], nd)}]</sub>"
    return cell + (f" ({m['failures']} failed)" if m["failures"] else "")


def _delta(m: dict, nd: int) -> str:
    return (f"{num(m['delta'], nd, True)} <sub>[{num(m['delta_ci_low'], nd, True)}, "
            f"{num(m['delta_ci_high'], nd, True)}]</sub>")


def quality_table(rows, metrics, *, rank: bool = True, deltas=()) -> list[str]:
    """Mean [95 % CI] of each metric; a Δ column (paired gain over the noisy input) for those in `deltas`."""
    shown = [m for m in metrics if any(m in r.run.summary["metrics"] for r in rows)]
    cols = (["#"] if rank else []) + ["model"]
    for m in shown:
        cols += [metric_label(m)] + ([f"Δ {metric_label(m).split(' (')[0]}"] if m in deltas else [])
    body, n = [], 0
    for r in ordered(rows):
        n += r.role == "system"
        cells = ([str(n) if r.role == "system" else "–"] if rank else []) + [model_name(r)]
        for m in shown:
            s = r.run.summary["metrics"].get(m)
            cells.append(_ci(s, decimals(m)) if s else "–")
            if m in deltas:
                cells.append("–" if (s is None or r.run.model == "noisy") else _delta(s, decimals(m)))
        body.append(cells)
    return md_table(cols, body)


def _weights(row) -> str:
    run = row.run
    w = run.summary.get("weights")
    if run.summary["model"].get("external"):
        return f"pretrained (weights in package `{row.package or '?'}`)"
    if not run.summary["model"]["trainable"]:
        return "no weights (training-free)"
    if not w:
        return "–"
    if w["shipped"]:
        return f"[{w['dtype']}, {w['bytes'] / 2**20:.1f} MiB](results/{w['file']})"
    return f"not in the repository ({w['reason']}); sha256 `{w['weights_sha256'][:12]}`"


def size_speed_table(rows) -> list[str]:
    body = []
    for r in ordered(rows):
        sp = r.run.summary["speed"]
        body.append([r.label, params_text(r.run), num(sp["rtf_cpu_1thread"], 3), "yes" if sp["causal"] else "no",
                     num(sp["latency_ms"], 1), budget_text(r.run), sp.get("cpu") or "–"])
    return md_table(["model", "params", "RTF CPU 1 thread", "causal", "latency (ms)", "training budget",
                     "speed measured on"], body)


def evidence_table(rows, links) -> list[str]:
    body = []
    for r in ordered(rows):
        s = r.run.summary
        outputs = f"all {s['counts']['utterances']} (FLAC)" if (s.get("outputs") or {}).get("shipped") else \
            "hashes only"
        p = s.get("provenance") or {}
        commit = f"`{(p.get('commit') or '?')[:8]}`" + (" dirty" if p.get("dirty") else "")
        body.append([r.label, _weights(r), outputs, commit, s["created"][:10],
                     f"[{r.run.run_id}]({links(r.run.path)}/summary.json)"])
    return md_table(["model", "weights", "outputs (ranked set)", "commit", "date", "run"], body)


def stream_table(board, key: str) -> list[str]:
    stream = {r.run_key: r.run.summary["metrics"] for r in board.rows(f"{key}+stream")}
    body = []
    for r in ordered(board.rows(key)):
        if (st := stream.get(r.run_key)) is None:
            continue
        m, sp = r.run.summary["metrics"], r.run.summary["speed"]
        body.append([r.label, str(sp.get("stream_chunk_samples") or "–"), num(sp["latency_ms"], 1),
                     num(sp["rtf_stream"], 3), _ci(m["pesq_wb"], 2), _ci(st["pesq_wb"], 2), _ci(m["si_sdr"], 2),
                     _ci(st["si_sdr"], 2)])
    return md_table(["model", "hop (samples)", "latency (ms)", "RTF stream", "PESQ-WB offline", "PESQ-WB streaming",
                     "SI-SDR offline", "SI-SDR streaming"], body) if body else []


def diagnostics_table(board, key: str) -> list[str]:
    track, noise = key.split("/")
    ops = [d.name for d in Protocol.load(noise).diagnostics()]
    sets = [{r.run_key: r.run.summary["metrics"] for r in board.rows(f"{track}/{op}")} for op in ops]
    body = []
    for r in ordered(board.rows(key)):
        if r.role == "system" and any(r.run_key in s for s in sets):
            body.append([r.label, *("–" if not (m := s.get(r.run_key)) else
                                    f"{num(m['pesq_wb']['delta'], 2, True)} / {num(m['si_sdr']['delta'], 2, True)}"
                                    for s in sets)])
    if not body:
        return []
    noisy = [board.noisy.get(f"{track}/{op}") for op in ops]
    body.append(["*noisy input (PESQ-WB / SI-SDR)*", *(
        "–" if n is None else
        f"*{num(n.summary['metrics']['pesq_wb']['mean'])} / {num(n.summary['metrics']['si_sdr']['mean'])}*"
        for n in noisy)])
    return md_table(["model", *(op.split(".only-")[1] for op in ops)], body)


def agreement_line(board, ranked: str, other: str) -> str:
    a, b = ({r.run_key: r.run for r in board.rows(k) if r.role == "system"} for k in (ranked, other))
    common = sorted(set(a) & set(b))
    if len(common) < 3:
        return f"Rank agreement with `{ranked}`: too few common systems ({len(common)})."
    rho, lo, hi = rank_agreement([a[k].per_utterance["pesq_wb"].to_numpy(float) for k in common],
                                 [b[k].per_utterance["pesq_wb"].to_numpy(float) for k in common])
    return (f"Rank agreement with `{ranked}` (PESQ-WB, {len(common)} systems): Spearman ρ = {rho:+.2f} "
            f"[{lo:+.2f}, {hi:+.2f}] (95 % CI, bootstrap over utterances of both sets).")


def _intro(board: Board, key: str) -> list[str]:
    """The header, five lines at most on what this is, then the summary table."""
    proto = Protocol.load(DEFAULT_PROTOCOL)
    split = load_track(key.split("/")[0]).split_id
    return [HEADER, "", "# vctk-denoise-bench leaderboard", "",
            f"Waveform speech denoising, 16 kHz: every model denoises the same {key.split('/')[0]} test "
            f"utterances (split `{split}`) noised by protocol **{proto.name}** (sha256 `{proto.sha256[:16]}`), "
            "and is scored on unseen speakers and on recorded noise too. " + ROW_RULE + " Δ = paired gain over "
            "the noisy input [95 % bootstrap CI]; the last column tests each row against the row below "
            f"(`bench compare`: paired bootstrap CI, Wilcoxon p Holm-corrected over the adjacent pairs, "
            f"α = {ALPHA:g}); rows it cannot tell apart share a rank (=k). [Glossary](#glossary).", "",
            *(summary_table(board, key) if board.rows(key) else ["No runs yet.", ""])]


ROW_RULE = ("**Row rule:** one row per model configuration (adapter, model config, training noise): its most "
            "recent run made from committed code that ships its 30 ranked-set outputs (and, if trained, its "
            "weights, trained as its preset says: its step budget, no option changed); with none such, its most "
            "recent run, marked ⚠.")


def _glossary(tracks: list[str], evals) -> list[str]:
    """What each metric and each test set measures, and the tracks without runs, at the end."""
    out = ["## Glossary", "", "### Metrics", ""]
    for m in (*MAIN, *EXTRA):
        d = METRICS[m]
        lo, hi, unit = d.range[0], d.range[1], (" " + d.unit) if d.unit else ""
        rng = f"at most {hi:.2f}{unit} (no lower bound; about 1 to 4.5 in practice)" if math.isinf(lo) else \
            f"{lo:g} to {hi:g}{unit}"
        out.append(f"- **{d.label}**: {MEASURES[m]}; {rng}, higher is better; "
                   f"{'needs the clean reference' if d.needs_reference else 'no reference needed'}.")
    out += ["", "### Test sets", ""]
    what = {"main": "the ranked set", "tier": "the test split under a stronger protocol tier", **ROLE_TITLES}
    for ev in (ev for ev in evals if ev.role in what):
        first = ev.prepared.track.spec["description"].split(". ")[0].rstrip(".")
        out.append(f"- `{ev.key}` ({ev.role}): {what[ev.role]}; {first}.")
    for name in [ev.key.split("/")[0] for ev in evals if ev.role == "main"]:
        out.append(f"- `{name}/{DEFAULT_PROTOCOL}.only-<op>` (diagnostic): the ranked utterances under one "
                   "manipulation of the protocol alone.")
    out += [f"- Track `{t}`: no runs (it needs the full corpus, `bench data download {t}`, and a frozen "
            "manifest; docs/tracks.md)." for t in tracks]
    return out + [""]


def _details(board: Board, key: str, links) -> list[str]:
    """The ranked set in full: all metrics, composites and DNSMOS, streaming, size and speed, evidence."""
    rows = board.rows(key)
    return [f"## Ranked set in full: `{key}`", "", *quality_table(rows, MAIN),
            "### Composite measures and DNSMOS components", "", *quality_table(rows, EXTRA, rank=False),
            "### Streaming: scored on the streamer's output at its natural hop", "",
            *(stream_table(board, key) or ["No causal model with a streamer yet.", ""]),
            "### Size and speed", "", *size_speed_table(rows),
            "### Evidence: weights, outputs, provenance", "", *evidence_table(rows, links)]


def _track(board: Board, name: str, links) -> list[str]:
    """The detail sections of benchmark track `name`: ranked set, generalization, tier, diagnostics."""
    evals = suite(name, Path("."))
    key = f"{name}/{DEFAULT_PROTOCOL}"
    out = _details(board, key, links)
    for ev in evals:
        r = board.rows(ev.key)
        if ev.role in ("cross-corpus", "recorded") and r:
            out += [f"## Generalization: `{ev.key}` ({ROLE_TITLES[ev.role]})", "", agreement_line(board, key, ev.key),
                    "", *quality_table(r, GENERAL, rank=False, deltas=("pesq_wb", "si_sdr"))]
        if ev.role == "tier" and r:
            out += [f"## Protocol tier: `{ev.key}`", "",
                    *quality_table(r, MAIN[:5], deltas=("pesq_wb", "si_sdr"))]
    if diag := diagnostics_table(board, key):
        out += ["## What each model fixes (diagnostics: Δ PESQ-WB / Δ SI-SDR dB on the ranked utterances under "
                "each manipulation alone)", "", *diag]
    return out


def render(results_dir: Path | None = None, board: Board | None = None) -> str:
    board = board or collect(results_dir)
    base = Path(results_dir or RESULTS_DIR).resolve().parent

    def links(path: Path) -> str:
        return Path(path).resolve().relative_to(base).as_posix()
    frozen = [n for n in available_tracks() if load_track(n).frozen]
    ran = [n for n in frozen if board.rows(f"{n}/{DEFAULT_PROTOCOL}")]
    out = _intro(board, f"{frozen[0]}/{DEFAULT_PROTOCOL}")
    for name in ran:
        out += _track(board, name, links)
    if board.archived:
        out += ["## Archived runs (superseded splits; same test utterances, other training data)", ""]
        for key, rows in sorted(board.archived.items()):
            out += [f"### `{key}`", "", *quality_table(rows, ("pesq_wb", "stoi", "si_sdr"), rank=False,
                                                        deltas=("pesq_wb",))]
    if board.refused:
        out += ["## Runs refused by the checks (not shown above)", "",
                *[f"- `{p}`: {reason}" for p, reason in board.refused], ""]
    out += _glossary([n for n in available_tracks() if n not in ran], suite(frozen[0], Path(".")) if frozen else [])
    return "\n".join(out).rstrip() + "\n"


README_MARKERS = ("<!-- board:summary:start -->", "<!-- board:summary:end -->")


def with_readme_block(readme: str, md: str) -> str:
    """`readme` with the text between its markers replaced by the board's summary table (from `md`,
    the rendered leaderboard); unchanged when it has no markers."""
    start, end = README_MARKERS
    if start not in readme or end not in readme:
        return readme
    table = [line for line in md.split("\n## ", 1)[0].splitlines() if line.startswith("|")]
    head, rest = readme.split(start, 1)
    return head + start + "\n" + "\n".join(table) + "\n" + end + rest.split(end, 1)[1]


def readme_for(path: Path) -> Path:
    """The README whose block the board writes: beside leaderboard.md."""
    return Path(path).resolve().parent / "README.md"


def write(path: Path | None = None, results_dir: Path | None = None, *, cache: bool = True) -> Path:
    path = Path(path or LEADERBOARD)
    board = collect(results_dir, cache=cache)
    md = render(results_dir, board)
    atomic_write_bytes(path, md.encode())
    readme = readme_for(path)
    if readme.exists() and (new := with_readme_block(readme.read_text(), md)) != readme.read_text():
        atomic_write_bytes(readme, new.encode())
    render_site(board, site_dir_for(path), draw=MediaCache() if cache else drawn)
    return path


def check(path: Path | None = None, results_dir: Path | None = None, *, cache: bool = True) -> tuple[bool, str]:
    """(up_to_date, unified diff) of the committed leaderboard and listening page against a fresh rendering."""
    path = Path(path or LEADERBOARD)
    if results_dir is not None and not Path(results_dir).is_dir():
        raise BenchError(f"--results-dir {results_dir}: no such folder")
    board = collect(results_dir, cache=cache)
    fresh = render(results_dir, board)
    current = path.read_text() if path.exists() else ""
    site = "".join(f"{p}\n" for p in check_site(board, site_dir_for(path), draw=MediaCache() if cache else drawn))
    readme = readme_for(path)
    if readme.exists() and with_readme_block(readme.read_text(), fresh) != readme.read_text():
        site += f"{readme.name}: the summary block between {README_MARKERS[0]} and its end marker is out of date\n"
    if current == fresh and not site:
        return True, ""
    diff = "".join(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True),
                                        fromfile=f"{path.name} (on disk)", tofile=f"{path.name} (from results/)", n=1))
    return False, diff + site
