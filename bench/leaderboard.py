"""`bench leaderboard`: render ``leaderboard.md`` from ``results/`` alone, and check it is current.

One section per track. For each model configuration (adapter + its resolved model config, from the
run's ``config.json``) the most recent run that passes every check
(`bench.results.load_run` + `check_against_benchmark`) is shown, so a small CPU ``quick`` model and the
paper-size ``full`` model of one adapter are two rows; runs that fail a check are
listed with the reason instead of being shown. Real systems are ranked by mean PESQ-WB; the
``noisy`` input (the floor) and oracles (upper bounds that use the clean reference) are shown
below the ranking, never ranked. The output depends only on the files in ``results/`` and the
benchmark definition (no clock), so ``--check`` can compare it byte for byte.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench import REPO_ROOT
from bench.data.tracks import available_tracks, load_track, track_version
from bench.errors import BenchError, ResultsError
from bench.metrics import METRICS
from bench.protocol import DEFAULT_PROTOCOL, Protocol
from bench.runconfig import read_record

if TYPE_CHECKING:   # pandas (bench.results) is imported when a board is made, not to register the command
    from bench.results import Run

LEADERBOARD = REPO_ROOT / "leaderboard.md"
HEADER = ("<!-- GENERATED FILE: rendered by `bench leaderboard` from results/ only. Do not edit by hand; "
          "`bench leaderboard --check` (run in CI) fails when it is out of date. -->")
QUALITY = ("pesq_wb", "stoi", "estoi", "si_sdr", "pesq_nb", "snr")
WITH_DELTA = ("pesq_wb", "stoi", "estoi", "si_sdr")


@dataclass
class Board:
    shown: dict[str, list[Run]]            # track -> runs shown
    refused: dict[str, list[tuple[str, str]]]  # track -> (run path, reason)
    variants: dict[Path, str]              # run path shown -> variant label (preset, else config hash)


def _test_ids(track) -> list[str] | None:
    try:
        return [u.utt_id for u in track.utterances(split="test")]
    except BenchError:
        return None


def collect(results_dir: Path | None = None, protocol: Protocol | None = None) -> Board:
    from bench.results import RESULTS_DIR, check_against_benchmark, iter_run_dirs, load_run

    protocol = protocol or Protocol.load(DEFAULT_PROTOCOL)
    results_dir = Path(results_dir or RESULTS_DIR)
    shown: dict[str, list[Run]] = {}
    refused: dict[str, list[tuple[str, str]]] = {}
    latest: dict[tuple[str, str, str], Run] = {}
    presets: dict[tuple[str, str, str], set[str]] = {}
    for d in iter_run_dirs(results_dir):
        track_name = d.parent.parent.name
        rel = d.relative_to(results_dir.parent) if results_dir.parent in d.parents else d
        try:
            run = load_run(d)
            if run.track != track_name or run.model != d.parent.name or run.run_id != d.name:
                raise ResultsError(f"{d}: folder is results/{track_name}/{d.parent.name}/{d.name} but summary.json says "
                                   f"results/{run.track}/{run.model}/{run.run_id}")
            track = track_version(track_name, run.summary["benchmark"]["track"].get("split_id"))  # archived versions too
            if not track.frozen:
                raise ResultsError(f"track {track_name} has no frozen manifest; its runs cannot be checked")
            check_against_benchmark(run, protocol=protocol, track_record=track.record(), test_ids=_test_ids(track))
        except (ResultsError, BenchError) as exc:
            refused.setdefault(track_name, []).append((rel.as_posix(), str(exc).splitlines()[0]))
            continue
        key = (track_name, run.model, model_config_key(run), run.summary["benchmark"]["track"]["split_id"])
        preset = _preset(run)
        if preset:
            presets.setdefault(key, set()).add(preset)
        if key not in latest or (run.summary["created"], run.run_id) > (latest[key].summary["created"], latest[key].run_id):
            latest[key] = run
    variants = {}
    for key, run in latest.items():
        shown.setdefault(key[0], []).append(run)
        variants[run.path] = variant_label(run, key[2], presets.get(key, set()))
    return Board(shown, refused, variants)


def model_config_key(run: Run) -> str:
    """Canonical JSON of the run's resolved model config ('' when its config record has none)."""
    cfg = read_record(run.path).get("model_config")
    return "" if cfg is None else json.dumps(cfg, sort_keys=True, separators=(",", ":"))


def _preset(run: Run) -> str | None:
    """The preset of the run's config record (older records without one: the summary's)."""
    record = read_record(run.path)
    if "preset" in record:
        return record["preset"]
    return run.summary["model"].get("preset") or run.summary["budget"].get("preset")


def variant_label(run: Run, config_key: str, group_presets: set[str]) -> str:
    """The preset a run was made with; else the preset of the other runs with the same model config
    (`config_key`, when they agree); else a short hash of its model config."""
    preset = _preset(run)
    if preset:
        return preset
    if len(group_presets) == 1:
        return next(iter(group_presets))
    return f"config {hashlib.sha256(config_key.encode()).hexdigest()[:8]}" if config_key else "default"


def _names(runs: list[Run], variants: dict[Path, str]) -> dict[Path, str]:
    """Row names: the model, plus its variant where the track shows the model more than once."""
    count: dict[str, int] = {}
    for r in runs:
        count[r.model] = count.get(r.model, 0) + 1
    return {r.path: r.model if count[r.model] == 1 else f"{r.model} · {variants[r.path]}" for r in runs}


def _f(v, nd=2, signed=False):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:+.{nd}f}" if signed else f"{v:.{nd}f}"


def _ci(m: dict, nd: int) -> str:
    return f"{_f(m['mean'], nd)} <sub>[{_f(m['ci_low'], nd)}, {_f(m['ci_high'], nd)}]</sub>"


def _delta(m: dict, nd: int) -> str:
    return f"{_f(m['delta'], nd, True)} <sub>[{_f(m['delta_ci_low'], nd, True)}, {_f(m['delta_ci_high'], nd, True)}]</sub>"


def _params(n: int) -> str:
    if n == 0:
        return "0"
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k"


def _role(run: Run) -> str:
    if run.summary["model"]["oracle"]:
        return "oracle"
    if run.model == "noisy":
        return "floor"
    return "system"


def _budget(run: Run) -> str:
    b = run.summary["budget"]
    if not b.get("trained"):
        return "no training"
    parts = []
    if b.get("steps") is not None:
        parts.append(f"{b['steps']} steps")
    if b.get("wall_minutes") is not None:
        parts.append(f"{b['wall_minutes']:.0f} min")
    if b.get("preset"):
        parts.append(f"preset `{b['preset']}`")
    return ", ".join(parts)


def _speed_machine(run: Run) -> str:
    """The CPU the speed columns were measured on, with the machine's core count from env.json (CPU
    names of virtual machines are often generic, the core count tells two machines apart)."""
    cpu = run.summary["speed"].get("cpu") or "?"
    try:
        cores = json.loads((run.path / run.summary["files"]["env"]).read_text()).get("cpu_count")
    except (OSError, json.JSONDecodeError):
        cores = None
    return f"{cpu}, {cores}-core machine" if cores else cpu


def _nd(metric: str) -> int:
    return 3 if metric in ("stoi", "estoi") else 2


def render_track(track_name: str, runs: list[Run], refused: list[tuple[str, str]], results_dir: Path,
                 variants: dict[Path, str]) -> list[str]:
    track = load_track(track_name)
    lines = [f"## Track `{track_name}`", ""]
    if not track.frozen:
        lines += [f"_{track.spec['description']}_", "",
                  f"No frozen manifest yet (`{track.spec.get('manifest_note', '')}`); no runs can be listed.", ""]
        return lines + _refused_lines(refused)
    rec = track.record()
    n_test = len(_test_ids(track) or [])
    lines += [f"Split `{rec['split_id']}` (manifest sha256 `{rec['manifest_sha256'][:16]}`), test: {n_test} utterances "
              f"of speakers {', '.join(track.splits['test'])}. {track.spec['description']}", ""]
    if not runs:
        lines += ["No runs yet.", ""]
    order = {"system": 0, "floor": 1, "oracle": 2}
    runs = sorted(runs, key=lambda r: (order[_role(r)], -((r.summary["metrics"].get("pesq_wb") or {}).get("mean") or -1e9),
                                       r.model))
    names = _names(runs, variants)
    archived = sorted({r.summary["benchmark"]["track"]["split_id"] for r in runs} - {rec["split_id"]})
    for old in archived:  # runs of an archived version of the track (checked against that version) say so
        which = ", ".join(names[r.path] for r in runs if r.summary["benchmark"]["track"]["split_id"] == old)
        lines += [f"Made on the archived split `{old}` (its own train/valid data; the same test files): {which}.", ""]
    if runs:
        cols = ["#", "model"]
        for m in QUALITY:
            label = METRICS[m].label + (" (dB)" if METRICS[m].unit == "dB" else "")
            cols.append(label)
            if m in WITH_DELTA:
                cols.append(f"Δ {METRICS[m].label}")
        lines += ["### Quality on the test split (mean <sub>[95% bootstrap CI]</sub>; "
                  "Δ = paired improvement over the noisy input)", "",
                  "| " + " | ".join(cols) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
        rank = 0
        for r in runs:
            role = _role(r)
            if role == "system":
                rank += 1
                tag = str(rank)
            else:
                tag = "–"
            name = f"**{names[r.path]}**" if role == "system" else names[r.path]
            name += {"floor": " (input, floor)", "oracle": " (oracle, not ranked)", "system": ""}[role]
            row = [tag, name]
            for m in QUALITY:
                s = r.summary["metrics"].get(m)
                if s is None:
                    row.append("–")
                    if m in WITH_DELTA:
                        row.append("–")
                    continue
                cell = _ci(s, _nd(m))
                if s["failures"]:
                    cell += f" ({s['failures']} failed)"
                row.append(cell)
                if m in WITH_DELTA:
                    row.append("–" if r.model == "noisy" else _delta(s, _nd(m)))
            lines.append("| " + " | ".join(row) + " |")
        lines += ["", "### Model size, speed and training budget", "",
                  "| model | params | RTF CPU 1 thread | causal | latency (ms) | RTF stream | speed measured on "
                  "| training budget | training hardware | date | run |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in runs:
            s, sp, b = r.summary, r.summary["speed"], r.summary["budget"]
            link = r.path.relative_to(results_dir.parent).as_posix() if results_dir.parent in r.path.parents else str(r.path)
            hw = b.get("hardware") or f"CPU: {sp.get('cpu', '?')}"
            lines.append(f"| {names[r.path]} | {_params(s['model']['parameters'])} | {_f(sp['rtf_cpu_1thread'], 3)} | "
                         f"{'yes' if sp['causal'] else 'no'} | {_f(sp['latency_ms'], 1)} | {_f(sp['rtf_stream'], 3)} | "
                         f"{_speed_machine(r)} | {_budget(r)} | {hw} | {s['created'][:10]} | [{r.run_id}]({link}/summary.json) |")
        lines.append("")
    return lines + _refused_lines(refused)


def _refused_lines(refused: list[tuple[str, str]]) -> list[str]:
    if not refused:
        return []
    return ["### Runs refused by the checks (not shown above)", "",
            *[f"- `{path}`: {reason}" for path, reason in sorted(refused)], ""]


def render(results_dir: Path | None = None) -> str:
    from bench.results import RESULTS_DIR

    results_dir = Path(results_dir or RESULTS_DIR)
    protocol = Protocol.load(DEFAULT_PROTOCOL)
    board = collect(results_dir, protocol)
    out = [HEADER, "", "# vctk-denoise-bench leaderboard", "",
           f"Noising protocol **{protocol.name}** (sha256 `{protocol.sha256[:16]}`, global seed {protocol.global_seed}). "
           "Every row is one run folder under `results/`; the most recent valid run of each model configuration "
           "is shown (one row per adapter and model config, named by its preset when the model has several rows). "
           "Real systems are ranked by mean PESQ-WB; the noisy input and oracles are not ranked. "
           "Scores are on 16-bit outputs of the frozen noisy test set. RTF = processing time / audio duration on a fixed "
           "10 s input, CPU, 1 torch thread. `bench compare A B` tests whether a difference is significant.", ""]
    for name in available_tracks():
        runs = board.shown.get(name, [])
        refused = board.refused.get(name, [])
        if name != "vctk-mini" and not runs and not refused and not load_track(name).frozen:
            out += [f"## Track `{name}`", "", f"No runs yet: needs the full corpus (`bench data download {name}`) "
                    "and a frozen manifest.", ""]
            continue
        out += render_track(name, runs, refused, results_dir, board.variants)
    for name in sorted(set(board.refused) - set(available_tracks())):  # results/<folder>/ of no known track
        out += [f"## Unknown track `{name}`", "", *_refused_lines(board.refused[name])]
    return "\n".join(out).rstrip() + "\n"


def write(path: Path | None = None, results_dir: Path | None = None) -> Path:
    from bench.audio import atomic_write_bytes

    path = Path(path or LEADERBOARD)
    atomic_write_bytes(path, render(results_dir).encode())
    return path


def check(path: Path | None = None, results_dir: Path | None = None) -> tuple[bool, str]:
    """(up_to_date, unified diff) of the committed leaderboard against a fresh rendering."""
    path = Path(path or LEADERBOARD)
    fresh = render(results_dir)
    current = path.read_text() if path.exists() else ""
    if current == fresh:
        return True, ""
    diff = "".join(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True),
                                        fromfile=f"{path.name} (on disk)", tofile=f"{path.name} (from results/)", n=1))
    return False, diff


def cmd_leaderboard(args) -> int:
    from bench.console import console, err_console

    results = Path(args.results_dir) if args.results_dir else None
    if results is not None and not results.is_dir():
        raise BenchError(f"--results-dir {results}: " + ("is not a folder" if results.exists() else "does not exist"),
                         hint="give the folder holding <track>/<model>/<run-id>/ (default: <repo>/results)")
    out = Path(args.output) if args.output else None
    if args.check:
        ok, diff = check(out, results)
        if ok:
            console.print("[green]leaderboard.md is up to date[/]")
            return 0
        err_console.print(diff)
        err_console.print("[red]leaderboard.md is out of date or edited by hand[/]: run `bench leaderboard` and commit it")
        return 1
    path = write(out, results)
    console.print(f"wrote {path}")
    board = collect(results)
    for track, refused in board.refused.items():
        for p, reason in refused:
            err_console.print(f"[yellow]refused[/] {p}: {reason}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("leaderboard", help="regenerate leaderboard.md from results/ (or --check it is current)")
    p.add_argument("--check", action="store_true", help="exit 1 if leaderboard.md is out of date")
    p.add_argument("--results-dir", default=None)
    p.add_argument("--output", default=None, help="default: <repo>/leaderboard.md")
    p.set_defaults(func=cmd_leaderboard)
