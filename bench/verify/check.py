"""Running the adapter contract (bench/verify/contract.py) behind `bench check NAME | --all`: every rule, in
order, for one or every adapter (`check_found`, `check`, `check_all`), and the tables the command prints.
Quick mode and the rules: submissions/README.md (``--all --quick``: about 10 s on 2 CPU cores; ``--all``:
about 10 minutes, mostly SepFormer). Checks run with 1 torch thread by default (``--threads``): on a small
shared machine that is the fastest."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from bench.verify.contract import (FAIL, INFO, LONG_SECONDS, LONG_SECONDS_QUICK, PASS, RULES, SKIP, WARN, Report,
                                   Runner, rule_batch, rule_config, rule_cpu, rule_determinism, rule_finite,
                                   rule_import, rule_model_card, rule_shape, rule_size_speed, rule_train)
from bench.core.console import table
from bench.core.errors import AdapterError
from bench.adapters.base import Found, discover
from bench.adapters.speed import torch_threads

_STYLE = {PASS: "[green]pass[/]", FAIL: "[bold red]FAIL[/]", SKIP: "[dim]skip[/]", INFO: "[cyan]info[/]",
          WARN: "[yellow]warn[/]"}


def _kind_of(path: Path) -> str:
    folder = path.parent.parent if path.name == "adapter.py" else path.parent
    return "baseline" if folder.name == "baselines" else "submission"


def _module_stem(path: Path) -> str:
    return path.parent.name if path.name == "adapter.py" else path.stem


def check_found(found: Found, *, quick: bool = False, preset: str | None = None, rtf: bool = True,
                strict: bool = False) -> Report:
    """Every rule, in order, for one discovered adapter; never raises for a broken adapter."""
    a = found.adapter
    rep = Report(a.name, found.kind, str(found.path), strict=strict)
    rule_import(rep, found)
    if preset is None and quick and "quick" in (a.presets or {}):
        preset = "quick"
    cfg, model = rule_config(rep, a, preset)
    if model is None:
        rule_model_card(rep, found)
        rep.add(", ".join(r for r in RULES[2:] if r != "model-card"), SKIP, "", "need a model (see `config`)")
        return rep
    run = Runner(a, model)
    rule_cpu(rep, run)
    rule_shape(rep, run, LONG_SECONDS_QUICK if quick else LONG_SECONDS)
    rule_batch(rep, run)
    rule_determinism(rep, run)
    rule_finite(rep, run)
    rule_train(rep, a, cfg)
    rule_model_card(rep, found)
    rule_size_speed(rep, run, quick, rtf)
    return rep


def _check_one(found: Found, threads: int | None, **kw) -> Report:
    """`check_found` with `threads` torch threads (None: leave the setting alone)."""
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
    t = table(escape(f"bench check {rep.name} ({rep.kind}, {rep.config_label}): {rep.path}"),
              ("rule", "result", "input", "detail") + (("fix",) if not rep.ok else ()), overflow="fold")
    for r in rep.results:
        row = [r.rule, _STYLE.get(r.status, r.status), escape(r.input), escape(r.detail)]
        t.add_row(*row, *([escape(r.fix) if r in rep.failures else ""] if not rep.ok else []))
    return t


def summary_table(reports: list[Report], quick: bool = False):
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
