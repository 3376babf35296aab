"""The `bench` command line. Subcommands parse arguments and call the modules that do the work;
every `BenchError` becomes one clear message (exit status 2), never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bench.errors import BenchError

console = Console(stderr=False)
err_console = Console(stderr=True)


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=False)


# ---------------------------------------------------------------------------------------------
# shared argument groups
def _add_track(p: argparse.ArgumentParser, positional: bool = False) -> None:
    if positional:
        p.add_argument("track", nargs="?", default="vctk-mini", help="track name (default: vctk-mini)")
    else:
        p.add_argument("--track", default="vctk-mini", help="track name (default: vctk-mini)")


def _add_dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None, help="folder holding the corpora (else $BENCH_DATA_ROOT, ../shared/data, user cache)")
    p.add_argument("--prepared-dir", default=None, help="prepared audio (else $BENCH_PREPARED_DIR or <repo>/prepared)")
    p.add_argument("--protocol", default=None, help="noising protocol (default: stft-v1)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")


def _prepared(args, *, prepare_if_missing: bool = False):
    from bench.data.prepared import PreparedTrack
    from bench.data.root import prepared_root
    from bench.data.tracks import load_track
    from bench.protocol import DEFAULT_PROTOCOL, Protocol

    track = load_track(args.track)
    proto = Protocol.load(args.protocol or DEFAULT_PROTOCOL)
    pt = PreparedTrack(track, proto, prepared_root(args.prepared_dir))
    if not pt.is_prepared and prepare_if_missing:
        cmd_data_prepare(args)
    return pt


# ---------------------------------------------------------------------------------------------
# bench data ...
def cmd_data_prepare(args) -> int:
    from bench.data.prepare import prepare
    from bench.data.root import prepared_root, resolve_data_root
    from bench.data.tracks import load_track
    from bench.protocol import DEFAULT_PROTOCOL, Protocol

    track = load_track(args.track)
    proto = Protocol.load(args.protocol or DEFAULT_PROTOCOL)
    corpus = resolve_data_root(args.data_root, track)
    out = prepared_root(args.prepared_dir)
    console.print(f"preparing track [bold]{track.name}[/] from {corpus} with protocol {proto.name} -> {out}")
    with progress_bar() as prog:
        pt = prepare(track, proto, corpus, out, jobs=args.jobs, progress=prog)
    counts = pt.info()["counts"]
    console.print(f"[green]prepared[/] {track.name}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                  + f"; noisy {'/'.join(pt.noisy_splits)} in {pt.noisy_dir}")
    if getattr(args, "evaluation", False) or getattr(args, "diagnostics", False):
        from bench.data.evaluation import prepare_evaluation

        with progress_bar() as prog:
            sets = prepare_evaluation(track, proto, args.data_root, out, jobs=args.jobs, progress=prog,
                                      only_diagnostics=not args.evaluation)
        for s in sets[1:]:
            console.print(f"[green]prepared[/] {s.role} set {s.key}: test in {s.prepared.noisy_dir}")
    return 0


def cmd_data_verify(args) -> int:
    from bench.data.prepared import PreparedTrack
    from bench.data.root import prepared_root, resolve_data_root
    from bench.data.tracks import load_track
    from bench.data.verify import verify_prepared, verify_sources
    from bench.protocol import DEFAULT_PROTOCOL, Protocol

    track = load_track(args.track)
    out = prepared_root(args.prepared_dir)
    corpus = resolve_data_root(args.data_root, track)
    rows = track.utterances(out)
    rep = verify_sources(track, corpus, rows, jobs=args.jobs)
    status = 0
    label = "frozen manifest" if track.frozen else "manifest written at first prepare"
    if rep.ok:
        console.print(f"[green]ok[/] {rep.checked} source files of {track.name} match the {label}")
    else:
        status = 1
        for kind in ("missing", "changed", "unreadable"):
            for item in getattr(rep, kind):
                err_console.print(f"[red]{kind}[/] {item}")
        err_console.print(f"[red]{track.name}: {len(rep.missing)} missing, {len(rep.changed)} changed, "
                          f"{len(rep.unreadable)} unreadable of {rep.checked} files[/]")
    for item in rep.extra:
        console.print(f"[yellow]not in manifest (ignored)[/] {item}")
    pt = PreparedTrack(track, Protocol.load(args.protocol or DEFAULT_PROTOCOL), out)
    if pt.is_prepared:
        prep = verify_prepared(pt, jobs=args.jobs)
        if prep.ok:
            console.print(f"[green]ok[/] {prep.checked} prepared files in {pt.track_dir} match their manifests")
        else:
            status = 1
            for kind in ("missing", "changed", "unreadable"):
                for item in getattr(prep, kind):
                    err_console.print(f"[red]prepared {kind}[/] {item}")
        for note in prep.notes:
            console.print(f"[green]ok[/] {note}")
    else:
        console.print(f"(not prepared yet in {out}; `bench data prepare --track {track.name}` makes it)")
    return status


def cmd_data_download(args) -> int:
    from bench.data.download import fetch_corpus
    from bench.data.root import candidate_roots
    from bench.data.tracks import load_track

    track = load_track(args.track)
    if not track.spec.get("download"):
        raise BenchError(f"track {track.name} has nothing to download", hint=track.get_data_command())
    root = Path(args.data_root).expanduser() if args.data_root else candidate_roots(None)[-1][1]
    if os.environ.get("BENCH_DATA_ROOT") and not args.data_root:
        root = Path(os.environ["BENCH_DATA_ROOT"]).expanduser()
    spec = dict(track.spec["download"])
    if args.url:
        spec["url"] = args.url
    folder = fetch_corpus(spec, root, progress=True)
    console.print(f"[green]downloaded and extracted[/] {folder}\nnext: bench data prepare --track {track.name} --data-root {root}")
    return 0


def cmd_data_freeze(args) -> int:
    from bench.data.manifest import write_manifest
    from bench.data.prepare import describe_sources
    from bench.data.root import resolve_data_root
    from bench.data.tracks import MANIFEST_DIR, load_track

    track = load_track(args.track)
    target = MANIFEST_DIR / (track.spec.get("manifest") or f"{track.name}.csv")
    if target.exists() and not args.force:
        raise BenchError(f"{target} exists: the track is frozen", hint="changing a frozen manifest changes the benchmark; use --force and bump the track version")
    corpus = resolve_data_root(args.data_root, track)
    rows = describe_sources(track, corpus, jobs=args.jobs)
    digest = write_manifest(target, rows)
    console.print(f"wrote {target} ({len(rows)} utterances, sha256 {digest[:16]}...)")
    return 0


def cmd_noise_examples(args) -> int:
    from bench import REPO_ROOT
    from bench.examples import write_examples

    pt = _prepared(args, prepare_if_missing=True)
    out = Path(args.out) if args.out else REPO_ROOT / "docs" / "noise-examples"
    meta = write_examples(pt, out, args.utterances, args.count)
    t = Table(title=f"noise examples ({pt.protocol.name}) -> {out}")
    for col in ("utterance", "PESQ-WB", "STOI", "SI-SDR"):
        t.add_column(col)
    for utt, s in meta["utterances"].items():
        t.add_row(utt, f"{s['pesq_wb']:.2f}", f"{s['stoi']:.3f}", f"{s['si_sdr']:.1f}")
    console.print(t)
    return 0


def cmd_protocol_show(args) -> int:
    import json

    from bench.protocol import DEFAULT_PROTOCOL, Protocol

    p = Protocol.load(args.protocol or DEFAULT_PROTOCOL)
    console.print_json(json.dumps({"sha256": p.sha256, **p.spec}))
    return 0


def cmd_list(args) -> int:
    from bench.adapters import discover

    t = Table(title="adapters")
    for col in ("name", "kind", "trainable", "causal", "oracle", "description"):
        t.add_column(col)
    for name, f in sorted(discover().items()):
        a = f.adapter
        t.add_row(name, f.kind, "yes" if a.trainable else "", "yes" if a.causal else "", "yes" if a.oracle else "",
                  a.description)
    console.print(t)
    return 0


# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench", description="vctk-denoise-bench: benchmark for waveform speech denoising")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the adapters (baselines and submissions)")
    p.set_defaults(func=cmd_list)

    data = sub.add_parser("data", help="download, prepare and verify the corpora").add_subparsers(dest="data_cmd", required=True)
    p = data.add_parser("prepare", help="resample, materialize the frozen noisy valid/test sets, write manifests")
    _add_track(p); _add_dirs(p)
    p.add_argument("--evaluation", action="store_true",
                   help="also prepare the track's evaluation sets: cross-corpus and recorded-noise test tracks, diagnostics")
    p.add_argument("--diagnostics", action="store_true",
                   help="also prepare the test split under each manipulation of the protocol alone")
    p.set_defaults(func=cmd_data_prepare)
    p = data.add_parser("verify", help="check a local corpus and prepared audio against the frozen manifests")
    _add_track(p); _add_dirs(p)
    p.set_defaults(func=cmd_data_verify)
    p = data.add_parser("download", help="download and extract a corpus (VCTK 0.92) resumably, verified by SHA-256")
    _add_track(p, positional=True)
    p.add_argument("--data-root", default=None, help="where to put it (default: $BENCH_DATA_ROOT or the user cache)")
    p.add_argument("--url", default=None, help="override the download URL (a mirror)")
    p.set_defaults(func=cmd_data_download)
    p = data.add_parser("freeze", help="write the committed manifest of a track from a local corpus")
    _add_track(p); _add_dirs(p)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_data_freeze)

    noise = sub.add_parser("noise", help="the noising protocol").add_subparsers(dest="noise_cmd", required=True)
    p = noise.add_parser("examples", help="write clean/noisy example pairs (WAV) and a spectrogram figure (PNG)")
    _add_track(p); _add_dirs(p)
    p.add_argument("--out", default=None, help="output folder (default: docs/noise-examples)")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--utterances", nargs="*", default=None)
    p.set_defaults(func=cmd_noise_examples)
    p = noise.add_parser("show", help="print the protocol spec and its hash")
    p.add_argument("--protocol", default=None)
    p.set_defaults(func=cmd_protocol_show)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return ap



# ---------------------------------------------------------------------------------------------
# bench run / leaderboard / compare
def _parse_overrides(items: list[str] | None) -> dict:
    import json

    out = {}
    for item in items or []:
        if "=" not in item:
            raise BenchError(f"--set {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def cmd_run(args) -> int:
    from bench.adapters import get_adapter
    from bench.pipeline import RunOptions, run
    from bench.results import load_run

    found = get_adapter(args.model)
    pt = _prepared(args, prepare_if_missing=True)
    train_over = _parse_overrides(args.train_set)
    if args.max_steps is not None:
        train_over["max_steps"] = args.max_steps
    if args.max_minutes is not None:
        train_over["max_minutes"] = args.max_minutes
    opts = RunOptions(preset=args.preset, overrides=_parse_overrides(args.set), train_overrides=train_over,
                      run_id=args.run_id, resume=args.resume, device=args.device, jobs=args.jobs,
                      results_dir=Path(args.results_dir) if args.results_dir else None,
                      runs_dir=Path(args.runs_dir) if args.runs_dir else None,
                      leaderboard=not args.no_leaderboard,
                      checkpoint=Path(args.checkpoint) if args.checkpoint else None,
                      train_only=args.train_only)
    if not opts.run_id and not opts.resume:
        from bench.pipeline import new_run_id

        opts.run_id = new_run_id()
    if opts.run_id:
        console.print(f"run [bold]{found.adapter.name}[/] on {pt.track.name}, run id {opts.run_id} "
                      f"(if interrupted: the same command with --resume --run-id {opts.run_id})")
    with progress_bar() as prog:
        path = run(found, pt, opts, progress=prog)
    if opts.train_only:
        console.print(f"trained: {path}; score it with: bench run --model {found.adapter.name} "
                      f"--track {pt.track.name} --checkpoint {path / 'best.pt'} --run-id {opts.run_id}")
        return 0
    r = load_run(path)
    _print_summary(r)
    console.print(f"results: {path}" + ("" if args.no_leaderboard else "; leaderboard.md regenerated"))
    return 0


def _print_summary(r) -> None:
    from bench.metrics import METRICS

    t = Table(title=f"{r.model} on {r.track} ({r.summary['counts']['utterances']} test utterances)")
    for col in ("metric", "noisy", r.model, "improvement [95% CI]"):
        t.add_column(col, justify="right")
    for m, s in r.summary["metrics"].items():
        nd = 3 if m in ("stoi", "estoi") else 2
        fmt = lambda v: "-" if v is None else f"{v:.{nd}f}"
        delta = "-" if s["delta"] is None else f"{s['delta']:+.{nd}f} [{s['delta_ci_low']:+.{nd}f}, {s['delta_ci_high']:+.{nd}f}]"
        t.add_row(METRICS[m].label, fmt(s["noisy_mean"]), fmt(s["mean"]) + (f" ({s['failures']} failed)" if s["failures"] else ""), delta)
    console.print(t)
    sp = r.summary["speed"]
    console.print(f"parameters {r.summary['model']['parameters']:,}  RTF (CPU, 1 thread) {sp['rtf_cpu_1thread']:.3f}")


def cmd_leaderboard(args) -> int:
    from bench import leaderboard

    results = Path(args.results_dir) if args.results_dir else None
    out = Path(args.output) if args.output else None
    if args.check:
        ok, diff = leaderboard.check(out, results)
        if ok:
            console.print("[green]leaderboard.md is up to date[/]")
            return 0
        err_console.print(diff)
        err_console.print("[red]leaderboard.md is out of date or edited by hand[/]: run `bench leaderboard` and commit it")
        return 1
    path = leaderboard.write(out, results)
    console.print(f"wrote {path}")
    board = leaderboard.collect(results)
    for track, refused in board.refused.items():
        for p, reason in refused:
            err_console.print(f"[yellow]refused[/] {p}: {reason}")
    return 0


def cmd_compare(args) -> int:
    import json

    from bench.compare import compare_runs
    from bench.metrics import METRICS
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


def _register_run_commands(sub) -> None:
    p = sub.add_parser("run", help="prepare -> train (if trainable) -> score -> results -> leaderboard")
    p.add_argument("--model", required=True, help="adapter name (see `bench list`)")
    _add_track(p); _add_dirs(p)
    p.add_argument("--preset", default=None, help="adapter preset, e.g. quick (CPU, minutes) or full (GPU)")
    p.add_argument("--set", nargs="*", default=None, metavar="KEY=VALUE", help="model config overrides")
    p.add_argument("--train-set", nargs="*", default=None, metavar="KEY=VALUE", help="training config overrides")
    p.add_argument("--max-steps", type=int, default=None, help="training budget in optimizer steps")
    p.add_argument("--max-minutes", type=float, default=None, help="training budget in wall-clock minutes")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--run-id", default=None, help="run id (default: UTC timestamp)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted training run (--run-id, default: the latest one)")
    p.add_argument("--checkpoint", default=None, help="score this checkpoint instead of training")
    p.add_argument("--results-dir", default=None, help="default: <repo>/results")
    p.add_argument("--runs-dir", default=None, help="checkpoints and logs (default: <repo>/runs, git-ignored)")
    p.add_argument("--no-leaderboard", action="store_true", help="do not regenerate leaderboard.md")
    p.add_argument("--train-only", action="store_true",
                   help="train, keep the checkpoints, do not score (score later with --checkpoint)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("leaderboard", help="regenerate leaderboard.md from results/ (or --check it is current)")
    p.add_argument("--check", action="store_true", help="exit 1 if leaderboard.md is out of date")
    p.add_argument("--results-dir", default=None)
    p.add_argument("--output", default=None, help="default: <repo>/leaderboard.md")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("compare", help="paired comparison of two runs: per-utterance differences, CI, significance")
    p.add_argument("a", help="run folder, MODEL (latest run) or MODEL@RUN_ID")
    p.add_argument("b")
    p.add_argument("--track", default="vctk-mini")
    p.add_argument("--metrics", nargs="*", default=None)
    p.add_argument("--results-dir", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)


def _register_other_modules(sub) -> None:
    from bench import contract, enhance, scaffold

    for register in (scaffold.register, contract.register, enhance.register):
        register(sub)


_EXTRA_COMMANDS: list = [_register_run_commands, _register_other_modules]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)])
    try:
        return int(args.func(args) or 0)
    except BenchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: finished work is kept; run the same command again to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
