"""`bench check NAME | --all`: the adapter contract (bench/verify/contract.py) for one or every adapter,
printed as a table per adapter (exit status 1 on any failure).

``--quick`` is the fast mode for CI: 30 s inputs become 5 s, the RTF is measured on 2 s, and models
are built with their ``quick`` preset when they have one (unless ``--preset`` says otherwise).
``bench check --all --quick`` checks every adapter in about 10 s on 2 CPU cores; ``bench check --all``
(paper-size configs, 30 s inputs, 10 s RTF) about 10 minutes, mostly SepFormer. Checks run with 1
torch thread by default (``--threads``): on a small shared machine that is the fastest.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from bench.verify.contract import FAIL, INFO, PASS, RULES, SKIP, WARN, Report, check_found
from bench.cli.data import positive_int
from bench.core.errors import AdapterError, BenchError
from bench.adapters.modelcard import SCAFFOLD_MARKER

if TYPE_CHECKING:
    from bench.adapters.base import Found

_STYLE = {PASS: "[green]pass[/]", FAIL: "[bold red]FAIL[/]", SKIP: "[dim]skip[/]", INFO: "[cyan]info[/]",
          WARN: "[yellow]warn[/]"}


def _kind_of(path: Path) -> str:
    folder = path.parent.parent if path.name == "adapter.py" else path.parent
    return "baseline" if folder.name == "baselines" else "submission"


def _module_stem(path: Path) -> str:
    return path.parent.name if path.name == "adapter.py" else path.stem


def _check_one(found: Found, threads: int | None, **kw) -> Report:
    """`check_found` with `threads` torch threads (None: leave the setting alone)."""
    from bench.adapters.speed import torch_threads

    with torch_threads(threads) if threads else nullcontext():
        return check_found(found, **kw)


def import_failure_report(path: Path, err: AdapterError, kind: str) -> Report:
    rep = Report(_module_stem(path).replace("_", "-"), kind, str(path))
    detail = err.message.split(": ", 1)[-1] if err.message.startswith(str(path)) else err.message
    hint = err.hint or ""
    if "_bench_root_" in hint:   # imported under another --root: that module name means nothing outside
        hint = f"fix the error in {path}"
    rep.add("import", FAIL, str(path), detail, hint)
    rep.add(", ".join(RULES[1:]), SKIP, "", "need the module to import")
    return rep


def check(name: str, *, root: Path | None = None, quick: bool = False, preset: str | None = None, rtf: bool = True,
          strict: bool = False, threads: int | None = 1) -> Report:
    """Check adapter `name` under `root` (default: the repository)."""
    from bench.adapters.base import discover

    errors: list[tuple[Path, AdapterError]] = []
    found = discover(root, strict=False, errors=errors)
    if name in found:
        return _check_one(found[name], threads, quick=quick, preset=preset, rtf=rtf, strict=strict)
    for path, err in errors:
        if _module_stem(path) in (name, name.replace("-", "_")) or getattr(err, "adapter_name", None) == name:
            return import_failure_report(path, err, _kind_of(path))
    hint = f"known: {', '.join(sorted(found))}"
    if errors:
        hint += "; modules that failed to import: " + ", ".join(str(p) for p, _ in errors)
    raise AdapterError(f"no adapter named {name!r}", hint=hint)


def check_all(*, root: Path | None = None, quick: bool = False, preset: str | None = None, rtf: bool = True,
              strict: bool = False, threads: int | None = 1, progress=None) -> list[Report]:
    from bench.adapters.base import discover

    errors: list[tuple[Path, AdapterError]] = []
    found = discover(root, strict=False, errors=errors)
    reports = [import_failure_report(path, err, _kind_of(path)) for path, err in errors]
    for name in sorted(found):
        if progress:
            progress(name)
        p = preset if (preset is None or preset in found[name].adapter.presets) else None
        reports.append(_check_one(found[name], threads, quick=quick, preset=p, rtf=rtf, strict=strict))
    return reports


def report_table(rep: Report):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(f"bench check {rep.name} ({rep.kind}, {rep.config_label}): {rep.path}"), show_lines=False)
    for col in ("rule", "result", "input", "detail") + (("fix",) if not rep.ok else ()):
        t.add_column(col, overflow="fold")
    for r in rep.results:
        row = [r.rule, _STYLE.get(r.status, r.status), escape(r.input), escape(r.detail)]
        t.add_row(*row, *([escape(r.fix) if r in rep.failures else ""] if not rep.ok else []))
    return t


def summary_table(reports: list[Report], quick: bool = False):
    from rich.table import Table

    t = Table(title="bench check --all" + (" --quick" if quick else ""), caption=f"rules: {', '.join(RULES[:-1])}")
    for col in ("adapter", "kind", "config", "result", "params", "RTF 1 thr"):
        t.add_column(col, justify="right" if col in ("params", "RTF 1 thr") else "left",
                     no_wrap=col in ("adapter", "kind", "params", "RTF 1 thr"))
    for rep in reports:
        if rep.ok:
            warned = [r for r in RULES[:-1] if rep.status_of(r) == WARN]
            result = _STYLE[PASS] + (f" [yellow](warn: {', '.join(warned)})[/]" if warned else "")
        else:
            result = _STYLE[FAIL] + " " + ", ".join(sorted({r.rule for r in rep.failures}, key=RULES.index))
        t.add_row(rep.name, rep.kind, rep.config_label.replace("preset ", "").replace(" config", ""), result,
                  "-" if rep.parameters is None else f"{rep.parameters:,}", "-" if rep.rtf is None else f"{rep.rtf:.3f}")
    return t


def cmd_check(args) -> int:
    from rich.markup import escape

    from bench.core.console import console, err_console

    root = Path(args.root) if args.root else None
    if not args.all and not args.name:
        raise BenchError("bench check: give an adapter NAME or --all", hint="`bench list` shows the adapters")
    if root is not None and not root.is_dir():
        raise BenchError(f"--root {root}: " + ("is not a folder" if root.exists() else "does not exist"),
                         hint="the folder holding baselines/ and submissions/")
    if args.name and args.preset and not args.all:
        from bench.adapters.base import discover
        from bench.train.runconfig import check_preset

        found = discover(root, strict=False).get(args.name)
        if found is not None:
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
    p = subparsers.add_parser("check", help="check an adapter against the contract (shapes, batch invariance, "
                                            "determinism, NaN, training step, model card) before any training")
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
    p.set_defaults(func=cmd_check)
