"""The listening page, ``site/``: rendered by `bench leaderboard` from the checked board like ``leaderboard.md``
and checked byte for byte by ``--check`` (what it shows: docs/site.md). The players point at the shipped FLACs
under ``results/``; the page's own files must stay under `BUDGET_BYTES`."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np

from bench import REPO_ROOT
from bench.board.site_media import (choose_utterances, clean_samples, drawn, flac_bytes, heatmap_png, read_pcm16,
                                   spectrogram_png)
from bench.board.site_template import MARK, document
from bench.board.summary import GROUP, budget_text, metric_label, num, ordered
from bench.core.errors import BenchError
from bench.core.files import atomic_write_bytes
from bench.protocol import DEFAULT_PROTOCOL, Protocol
from bench.verify.compare import decimals

SITE_DIR = REPO_ROOT / "site"
BUDGET_BYTES = 5 * 2**20
ROLE_ORDER = ("main", "stream", "tier", "cross-corpus", "recorded", "diagnostic")
ROLE_TITLE = {"main": "Ranked set", "stream": "Streaming (the ranked set through each streamer)",
              "tier": "Protocol tier", "cross-corpus": "Unseen corpus and speakers, same protocol",
              "recorded": "Real recorded noise", "diagnostic": "Diagnostic"}
METRIC_ORDER = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "snr", "csig", "cbak", "covl",
                "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
RULE = ("the test utterances with the lowest, the median and the highest PESQ-WB of the noisy input "
        "(the <code>noisy</code> run's per_utterance.csv; ties by utterance id)")


def site_dir_for(leaderboard_path: Path) -> Path:
    """The page lives beside the leaderboard file: <dir of leaderboard.md>/site."""
    return Path(leaderboard_path).resolve().parent / "site"


# cells and tables
def _td(text: str, value=None) -> str:
    v = "" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        (f"{value:.6g}" if isinstance(value, (int, float)) else html.escape(str(value)))
    return f'<td data-v="{v}">{text}</td>'


def _metric_cell(m: dict | None, metric: str, is_noisy: bool) -> str:
    if not m:
        return _td("–")
    nd = decimals(metric)
    text = f"{num(m['mean'], nd)} <small>[{num(m['ci_low'], nd)}, {num(m['ci_high'], nd)}]</small>"
    if m.get("failures"):
        text += f" <small class=bad>({m['failures']} failed)</small>"
    if not is_noisy and m.get("delta") is not None:
        text += (f"<br><small class=delta>Δ {num(m['delta'], nd, True)} [{num(m['delta_ci_low'], nd, True)}, "
                 f"{num(m['delta_ci_high'], nd, True)}]</small>")
    return _td(text, m["mean"])


def _name_cell(row, link: str) -> str:
    s = row.run.summary["model"]
    name = f"<b>{html.escape(row.label)}</b>" if row.role == "system" else html.escape(row.label)
    name += {"floor": " <small>(input, floor)</small>", "oracle": " <small>(oracle, not ranked)</small>",
             "system": ""}[row.role]
    if s.get("external"):
        name += " <small>external, pretrained on other data</small>"
    if row.marks:
        name += f" <small class=bad>⚠ {html.escape('; '.join(row.marks))}</small>"
    return _td(f'{name} <a class=run href="{link}" title="summary.json of this run">run</a>', row.label)


def _href(target: Path, site_dir: Path) -> str:
    return quote(Path(os.path.relpath(Path(target).resolve(), site_dir)).as_posix(), safe="/.-_~")


def _tr(row, cells: list[str]) -> str:
    return f'<tr data-model="{html.escape(row.label)}" data-group={GROUP[row.role]}>' + "".join(cells) + "</tr>"


def _table(table_id: str, head: list[str], trs: list[str], sep: str = "\n") -> str:
    """A sortable table: the column names `head` (text) over the rows `trs` (HTML), joined by `sep`."""
    thead = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return sep.join([f'<table class=sortable id="{table_id}"><thead><tr>{thead}</tr></thead><tbody>', *trs]) + \
        "</tbody></table>"


def quality_table(rows, site_dir: Path, table_id: str, *, rank: bool) -> str:
    shown = [m for m in METRIC_ORDER if any(m in r.run.summary["metrics"] for r in rows)]
    trs, n = [], 0
    for r in ordered(rows):
        n += r.role == "system"
        cells = [_td(str(n), n) if r.role == "system" else _td("–")] if rank else []
        cells.append(_name_cell(r, _href(r.run.path / "summary.json", site_dir)))
        cells += [_metric_cell(r.run.summary["metrics"].get(m), m, r.run.model == "noisy") for m in shown]
        trs.append(_tr(r, cells))
    return _table(table_id, (["#"] if rank else []) + ["model"] + [metric_label(m) for m in shown], trs)


def runs_table(rows, site_dir: Path, table_id: str) -> str:
    trs = []
    for r in ordered(rows):
        s = r.run.summary
        sp, p = s["speed"], s.get("provenance") or {}
        commit = (p.get("commit") or "?")[:8] + (" dirty" if p.get("dirty") else "")
        link = _href(r.run.path / "summary.json", site_dir)
        trs.append(_tr(r, [
            _td(html.escape(r.label), r.label), _td(f"{s['model']['parameters']:,}", s["model"]["parameters"]),
            _td(num(sp.get("rtf_cpu_1thread"), 3), sp.get("rtf_cpu_1thread")), _td("yes" if sp["causal"] else "no"),
            _td(num(sp.get("latency_ms"), 1), sp.get("latency_ms")), _td(html.escape(budget_text(r.run))),
            _td(f"<code>{html.escape(commit)}</code>"), _td(s["created"][:10], s["created"]),
            _td(f'<a href="{link}">{html.escape(r.run.run_id)}</a>', r.run.run_id)]))
    return _table(table_id, ["model", "params", "RTF CPU 1 thread", "causal", "latency (ms)", "training", "commit",
                             "date", "run"], trs)


# diagnostics and listening
def diagnostics(board, key: str) -> tuple[list, list[str], np.ndarray, dict, list]:
    """(system rows, manipulations, Δ PESQ-WB [row, op], {op: {(model, run id): run}}, noisy PESQ-WB per op)
    of ranked set `key`, from the board's ``<track>/<protocol>.only-<op>`` sets."""
    track, noise = key.split("/", 1)
    ops = [p.name for p in Protocol.load(noise).diagnostics()] if "." not in noise else []
    ops = [op for op in ops if board.rows(f"{track}/{op}")]
    by_op = {op: {r.run_key: r.run for r in board.rows(f"{track}/{op}")} for op in ops}
    rows = [r for r in ordered(board.rows(key)) if r.role == "system" and any(r.run_key in by_op[op] for op in ops)]
    delta = np.full((len(rows), len(ops)), np.nan)
    for i, r in enumerate(rows):
        for j, op in enumerate(ops):
            run = by_op[op].get(r.run_key)
            m = (run.summary["metrics"].get("pesq_wb") or {}) if run else {}
            if m.get("delta") is not None:
                delta[i, j] = m["delta"]
    noisy = [(board.noisy[f"{track}/{op}"].summary["metrics"].get("pesq_wb") or {}).get("mean")
             if f"{track}/{op}" in board.noisy else None for op in ops]
    return rows, [op.split(".only-", 1)[1] for op in ops], delta, by_op, noisy


def listening(board, key: str, site_dir: Path, files: dict, clean, draw=drawn) -> str:
    """The players of ranked set `key`; adds the clean FLACs and spectrogram PNGs to `files`."""
    noisy = board.noisy.get(key)
    if noisy is None or not (noisy.summary.get("outputs") or {}).get("shipped"):
        return "<p>No players: the noisy input's run of this set ships no outputs.</p>"
    track = key.split("/", 1)[0]
    runs = [("noisy (input)", noisy, [])] + [(r.label, r.run, r.marks) for r in ordered(board.rows(key))
                                              if r.run.model != "noisy"]
    out = [f"<p>Utterances: {RULE}. Spectrograms: 0-8 kHz over the whole utterance, one colour scale for all "
           "(-95 to -15 dB re a full-scale sine). Beside each model: its PESQ-WB on this utterance.</p>"]
    for which, utt, value in choose_utterances(noisy):
        clean_rel = f"audio/{track}/{utt}.flac"
        q = clean(noisy, utt, site_dir / clean_rel)
        files[clean_rel] = _reuse(site_dir / clean_rel, q) or flac_bytes(q)
        cards = [_card("clean (reference)", "clean", clean_rel, q, None, f"{track}/{utt}", files, draw=draw)]
        for label, run, marks in runs:
            path = run.path / "enhanced" / f"{utt}.flac"
            if not (run.summary.get("outputs") or {}).get("shipped"):
                cards.append(_missing(label, "outputs not shipped"))
            elif not path.exists():
                cards.append(_missing(label, f"output file missing: {html.escape(str(path))}"))
            else:
                score = None if run is noisy else _utt_score(run, utt)
                cards.append(_card(label, f"{run.model}--{run.run_id}", _href(path, site_dir), read_pcm16(path), score,
                                    f"{track}/{utt}", files, marks, draw))
        out.append(f"<h4><code>{html.escape(utt)}</code>: {which} noisy PESQ-WB ({value:.2f})</h4>"
                   f"{AB}<div class=grid>{''.join(cards)}</div>")
    return "\n".join(out)


def _utt_score(run, utt: str):
    df = run.per_utterance
    if "pesq_wb" not in df.columns:
        return None
    v = df.loc[df["utt_id"] == utt, "pesq_wb"]
    return None if v.empty or math.isnan(float(v.iloc[0])) else float(v.iloc[0])


AB = ("<div class=ab>A/B at the same position: <button data-to=clean>clean</button><button data-to=noisy>noisy"
      "</button><button data-to=a>A</button><select class=ab-a></select><button data-to=b>B</button>"
      "<select class=ab-b></select> <small class=ab-now></small></div>")


def _card(label: str, stem: str, src: str, samples, score, folder: str, files: dict, marks=(), draw=drawn) -> str:
    png = f"spectrograms/{folder}/{stem}.png"
    files[png] = draw(spectrogram_png, samples)
    note = "" if score is None else f" <small>PESQ-WB {score:.2f}</small>"
    if marks:
        note += f" <small class=bad>⚠ {html.escape('; '.join(marks))}</small>"
    return (f'<figure class=player data-label="{html.escape(label)}"><figcaption>{html.escape(label)}{note}</figcaption>'
            f'<img src="{quote(png, safe="/.-_~")}" width=320 height=160 alt="spectrogram: {html.escape(label)}">'
            f'<audio controls preload=metadata src="{src}"></audio><span class=state></span></figure>')


def _missing(label: str, why: str) -> str:
    return f"<figure class=\"player missing\"><figcaption>{html.escape(label)}</figcaption><p class=bad>⚠ {why}</p></figure>"


def _slug(label: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in label.lower())
    return "-".join(p for p in keep.split("-") if p)


def _reuse(path: Path, q: np.ndarray) -> bytes | None:
    """The bytes of the page's existing copy when it holds exactly these samples (FLAC encoders differ)."""
    try:
        return path.read_bytes() if path.exists() and np.array_equal(read_pcm16(path), q) else None
    except Exception:
        return None


def diagnostics_html(board, key: str, site_dir: Path, files: dict, draw=drawn) -> str:
    rows, ops, delta, by_op, noisy = diagnostics(board, key)
    if not rows:
        return "<p>No diagnostic runs yet.</p>"
    track = key.split("/", 1)[0]
    png = f"diagnostics-{track}.png"
    files[png] = draw(heatmap_png, [r.label for r in rows], ops, delta, noisy)
    full = [f"{key.split('/', 1)[1]}.only-{op}" for op in ops]
    body = []
    for r in rows:
        cells = [_td(html.escape(r.label), r.label)]
        for name in full:
            run = by_op[name].get(r.run_key)
            m = run.summary["metrics"] if run else {}
            p, s = m.get("pesq_wb") or {}, m.get("si_sdr") or {}
            cells.append(_td("–") if not p else _td(
                f"{num(p['delta'], 2, True)} <small>[{num(p['delta_ci_low'], 2, True)}, "
                f"{num(p['delta_ci_high'], 2, True)}]</small><br>"
                f"<small>SI-SDR {num(s.get('delta'), 2, True)} dB</small>",
                p["delta"]))
        body.append(_tr(r, cells))
    return (f'<p><img class=heatmap src="{png}" alt="diagnostics heatmap of {html.escape(track)}"></p>' +
            _table(f"t-diag-{_slug(track)}", ["model", *ops], body, sep=""))


# the page
def page(board, site_dir: Path, files: dict, clean, draw=drawn) -> str:
    proto = Protocol.load(DEFAULT_PROTOCOL)
    order = {role: i for i, role in enumerate(ROLE_ORDER)}   # roles not listed go last
    keys = sorted(board.sets, key=lambda k: (order.get(board.roles.get(k, ""), len(ROLE_ORDER)), k))
    body = ["<h1>vctk-denoise-bench: leaderboard and listening page</h1>",
            f"<p>Noising protocol <b>{proto.name}</b> (sha256 <code>{proto.sha256[:16]}</code>). Rendered by "
            "<code>bench leaderboard</code> from <code>results/</code> with <code>leaderboard.md</code> (its row rule "
            "and checks); every cell is mean <small>[95 % bootstrap CI]</small> and, for models, Δ = the paired "
            "improvement over the noisy input <small>[95 % CI]</small>. Click a column header to sort. "
            "Each <i>run</i> link opens that run's summary.json.</p>",
            "<nav>" + "".join(f'<a href="#s-{_slug(k)}">{html.escape(k)}</a>' for k in keys) +
            ("<a href=#archived>archived</a>" if board.archived else "") + "</nav>"]
    if not keys:
        body.append("<p>No runs yet.</p>")
    for key in keys:
        role = board.roles.get(key, "")
        rows = board.rows(key)
        body.append(f'<section id="s-{_slug(key)}"><h2>{html.escape(ROLE_TITLE.get(role, role))}: '
                    f"<code>{html.escape(key)}</code></h2>")
        body.append(quality_table(rows, site_dir, f"t-{_slug(key)}", rank=role == "main"))
        if role == "main":
            body += ["<h3>Listen</h3>", listening(board, key, site_dir, files, clean, draw),
                     "<h3>What each model fixes (Δ PESQ-WB per manipulation alone)</h3>",
                     diagnostics_html(board, key, site_dir, files, draw),
                     "<h3>Runs: size, speed, training budget</h3>", runs_table(rows, site_dir, f"r-{_slug(key)}")]
        body.append("</section>")
    if board.archived:
        body.append("<section id=archived><h2>Archived runs (superseded splits)</h2>")
        for key, rows in sorted(board.archived.items()):
            body += [f"<h3><code>{html.escape(key)}</code></h3>",
                     quality_table(rows, site_dir, f"a-{_slug(key)}", rank=False)]
        body.append("</section>")
    if board.refused:
        body.append("<section id=refused><h2>Runs refused by the checks</h2><ul>" + "".join(
            f"<li><code>{html.escape(p)}</code>: {html.escape(reason)}</li>" for p, reason in board.refused) + "</ul></section>")
    return document(body)


def default_clean(noisy_run, utt_id: str, page_copy: Path):
    """The clean reference: the page's own copy, else the repository's committed page (a page written from a
    copy of results/), else the prepared track; each only if its samples match the frozen manifest."""
    parts = Path(page_copy).parts
    repo_copy = (REPO_ROOT.joinpath("site", *parts[len(parts) - parts[::-1].index("site"):])
                 if "site" in parts else None)
    return clean_samples(noisy_run.track, noisy_run.split_id, utt_id, (page_copy, repo_copy))


def build(board, site_dir: Path, clean=None, draw=drawn) -> dict[str, bytes]:
    """Every file of the page, {path relative to `site_dir`: bytes}. `clean(noisy_run, utt_id, page_copy)`
    gives a clean test utterance as int16 samples (default: checked against the track's frozen manifest);
    `draw(make, *inputs)` renders an image (`drawn`, or a `MediaCache`)."""
    site_dir = Path(site_dir).resolve()
    files: dict[str, bytes] = {}
    files["index.html"] = page(board, site_dir, files, clean or default_clean, draw).encode()
    total = sum(map(len, files.values()))
    if total > BUDGET_BYTES:
        raise BenchError(f"the listening page would hold {total / 2**20:.1f} MiB, over its budget of "
                         f"{BUDGET_BYTES / 2**20:.0f} MiB", hint="lower the number of utterances or models shown")
    return dict(sorted(files.items()))


def _on_disk(site_dir: Path) -> dict[str, Path]:
    if not site_dir.is_dir():
        return {}
    return {p.relative_to(site_dir).as_posix(): p for p in sorted(site_dir.rglob("*")) if p.is_file()}


def render_site(board, out_dir: Path | None = None, clean=None, draw=drawn) -> dict[str, bytes]:
    """Write the page to `out_dir` (default: site/), removing files it no longer has."""
    out_dir = Path(out_dir or SITE_DIR)
    index = out_dir / "index.html"
    if out_dir.exists() and any(out_dir.iterdir()) and not (index.exists() and MARK in index.read_text(errors="replace")):
        raise BenchError(f"{out_dir} exists and is not a page written by `bench leaderboard`; refusing to replace it",
                         hint="move it away or choose another --output")
    files = build(board, out_dir, clean, draw)
    for rel_path, payload in files.items():
        p = out_dir / rel_path
        if not p.exists() or p.read_bytes() != payload:
            atomic_write_bytes(p, payload)
    for rel_path, p in _on_disk(out_dir).items():
        if rel_path not in files:
            p.unlink()
    for d in sorted((d for d in out_dir.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
        if not any(d.iterdir()):
            d.rmdir()
    return files


def check_site(board, out_dir: Path | None = None, clean=None, draw=drawn) -> list[str]:
    """What differs between the page on disk and a fresh rendering ([] when it is up to date)."""
    out_dir = Path(out_dir or SITE_DIR)
    fresh, disk = build(board, out_dir, clean, draw), _on_disk(out_dir)
    name = out_dir.name
    problems = [f"{name}/{p}: missing" for p in fresh if p not in disk]
    problems += [f"{name}/{p}: differs from a fresh rendering" for p in fresh if p in disk and disk[p].read_bytes() != fresh[p]]
    problems += [f"{name}/{p}: not part of the page (extra file)" for p in disk if p not in fresh]
    return problems
