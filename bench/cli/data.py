"""`bench data prepare | verify | download | freeze`, and `prepared_track`: the prepared track the
``--track``/``--protocol``/``--prepared-dir`` options name (the commands on a prepared track share it)."""

from __future__ import annotations

from bench.cli.args import add_dirs, add_track, command
from bench.core.errors import BenchError


def prepared_track(args, *, prepare_if_missing: bool = False):
    """The `PreparedTrack` of ``--track``/``--protocol``/``--prepared-dir``, prepared first if asked."""
    from bench.data.prepare import load_prepared

    pt = load_prepared(args.track, args.protocol, args.prepared_dir)
    if not pt.is_prepared and prepare_if_missing:
        cmd_prepare(args)
    return pt


def cmd_prepare(args) -> int:
    from bench.core.console import console, progress_bar
    from bench.data.prepare import prepare
    from bench.corpora.root import prepared_root, resolve_data_root
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


def _print_report(rep, ok: str, prefix: str = "") -> bool:
    """A verification report: the `ok` line when it passed, else each problem; whether it passed."""
    from bench.core.console import console, err_console

    if rep.ok:
        console.print(f"[green]ok[/] {ok}")
        return True
    for kind in ("missing", "changed", "unreadable"):
        for item in getattr(rep, kind):
            err_console.print(f"[red]{prefix}{kind}[/] {item}")
    return False


def cmd_verify(args) -> int:
    from bench.core.console import console, err_console
    from bench.data.prepared import PreparedTrack
    from bench.corpora.root import prepared_root, resolve_data_root
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
    if not _print_report(rep, f"{rep.checked} source files of {track.name} match the {label}"):
        status = 1
        err_console.print(f"[red]{track.name}: {len(rep.missing)} missing, {len(rep.changed)} changed, "
                          f"{len(rep.unreadable)} unreadable of {rep.checked} files[/]")
    for item in rep.extra:
        console.print(f"[yellow]not in manifest (ignored)[/] {item}")
    pt = PreparedTrack(track, Protocol.load(args.protocol or DEFAULT_PROTOCOL), out)
    if pt.is_prepared:
        prep = verify_prepared(pt, jobs=args.jobs)
        if not _print_report(prep, f"{prep.checked} prepared files in {pt.track_dir} match their manifests",
                             "prepared "):
            status = 1
        for note in prep.notes:
            console.print(f"[green]ok[/] {note}")
    else:
        console.print(f"(not prepared yet in {out}; `bench data prepare --track {track.name}` makes it)")
    return status


def cmd_download(args) -> int:
    from bench.core.console import console
    from bench.corpora.download import fetch_corpus
    from bench.corpora.root import candidate_roots
    from bench.data.tracks import load_track

    track = load_track(args.track)
    if not track.spec.get("download"):
        raise BenchError(f"track {track.name} has nothing to download", hint=track.get_data_command())
    # --data-root, else $BENCH_DATA_ROOT, else the user cache: never into ../shared/data
    root = next(path for origin, path in candidate_roots(args.data_root) if origin != "../shared/data")
    spec = dict(track.spec["download"])
    if args.url:
        spec["url"] = args.url
    folder = fetch_corpus(spec, root, progress=True)
    console.print(f"[green]downloaded and extracted[/] {folder}\n"
                  f"next: bench data prepare --track {track.name} --data-root {root}")
    return 0


def cmd_freeze(args) -> int:
    from bench.core.console import console
    from bench.data.manifest import write_manifest
    from bench.data.prepare import describe_sources
    from bench.corpora.root import resolve_data_root
    from bench.data.tracks import MANIFEST_DIR, load_track

    track = load_track(args.track)
    target = MANIFEST_DIR / (track.spec.get("manifest") or f"{track.name}.csv")
    if target.exists() and not args.force:
        raise BenchError(f"{target} exists: the track is frozen",
                         hint="changing a frozen manifest changes the benchmark; use --force and bump the track version")
    corpus = resolve_data_root(args.data_root, track)
    rows = describe_sources(track, corpus, jobs=args.jobs)
    digest = write_manifest(target, rows)
    console.print(f"wrote {target} ({len(rows)} utterances, sha256 {digest[:16]}...)")
    return 0


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="download, prepare and verify the corpora").add_subparsers(
        dest="data_cmd", required=True)
    p = command(data, "prepare", cmd_prepare,
                help="resample, materialize the frozen noisy valid/test sets, write manifests")
    add_dirs(p)
    p.add_argument("--evaluation", action="store_true",
                   help="also prepare the track's evaluation sets: cross-corpus and recorded-noise test tracks, diagnostics")
    p.add_argument("--diagnostics", action="store_true",
                   help="also prepare the test split under each manipulation of the protocol alone")
    add_dirs(command(data, "verify", cmd_verify,
                     help="check a local corpus and prepared audio against the frozen manifests"))
    p = command(data, "download", cmd_download,
                help="download and extract a corpus (VCTK 0.92) resumably, verified by SHA-256")
    add_track(p, positional=True)
    p.add_argument("--data-root", default=None, help="where to put it (default: $BENCH_DATA_ROOT or the user cache)")
    p.add_argument("--url", default=None, help="override the download URL (a mirror)")
    p = command(data, "freeze", cmd_freeze, help="write the committed manifest of a track from a local corpus")
    add_dirs(p)
    p.add_argument("--force", action="store_true")
