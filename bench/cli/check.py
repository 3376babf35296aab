"""`bench check NAME | --all`: the adapter contract (bench/verify/check.py) for one or every adapter, a
table per adapter; exit status 1 on any failure."""

from __future__ import annotations

from bench.cli.args import command, folder, positive_int
from bench.core.errors import BenchError


def cmd_check(args) -> int:
    from rich.markup import escape

    from bench.adapters.base import check_preset, discover
    from bench.core.console import console, err_console
    from bench.verify.check import check, check_all, report_table, summary_table

    if not args.all and not args.name:
        raise BenchError("bench check: give an adapter NAME or --all", hint="`bench list` shows the adapters")
    root = folder(args.root, "--root", "the folder holding baselines/ and submissions/")
    if args.name and args.preset and not args.all and (found := discover(root, strict=False).get(args.name)):
        check_preset(found.adapter, args.preset)
    opts = dict(root=root, quick=args.quick, preset=args.preset, rtf=not args.no_rtf, strict=args.strict,
                threads=args.threads)
    if args.all:
        reports = check_all(**opts, progress=lambda n: err_console.print(f"[dim]checking {n} ...[/]"))
    else:
        reports = [check(args.name, **opts)]
    for rep in reports:
        if not (args.all and rep.ok and not args.verbose_tables):
            console.print(report_table(rep))
    if args.all:
        console.print(summary_table(reports, args.quick))
    bad = [r for r in reports if not r.ok]
    for rep in bad:
        for r in rep.failures:
            err_console.print("[bold red]FAIL[/] " + escape(f"{rep.name} [{r.rule}] {r.input}: {r.detail}"
                                                            + (f"\n  -> {r.fix}" if r.fix else "")),
                              soft_wrap=True, highlight=False)
    if bad:
        err_console.print(f"[red]{len(bad)} of {len(reports)} adapter(s) break the contract[/]")
        return 1
    console.print(f"[green]ok[/] {len(reports)} adapter(s) follow the contract")
    return 0


def register(subparsers) -> None:
    from bench.adapters.modelcard import SCAFFOLD_MARKER   # named in the help; a small module

    p = command(subparsers, "check", cmd_check, help="check an adapter against the contract (shapes, batch "
                "invariance, determinism, NaN, training step, model card) before any training")
    p.add_argument("name", nargs="?", default=None, help="adapter name (see `bench list`)")
    p.add_argument("--all", action="store_true", help="check every adapter in baselines/ and submissions/ (CI)")
    p.add_argument("--quick", action="store_true",
                   help="fast mode: 5 s instead of 30 s, RTF on 2 s, and the `quick` preset's model when there is one")
    p.add_argument("--preset", default=None, help="check the model of this preset (default: the adapter's config)")
    p.add_argument("--no-rtf", action="store_true", help="skip the real-time-factor measurement")
    p.add_argument("--strict", action="store_true",
                   help=f"warnings fail too (e.g. '{SCAFFOLD_MARKER}' markers left by the scaffold)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads for the checks (default 1: fastest on a shared machine; the RTF always uses 1)")
    p.add_argument("--root", default=None, help="folder holding baselines/ and submissions/ (default: the repository)")
    p.add_argument("--verbose-tables", action="store_true",
                   help="with --all, print every adapter's table, not only failing ones")
