"""`bench list`: the adapters (baselines and submissions) in a table."""

from __future__ import annotations


def cmd_list(args) -> int:
    from rich.table import Table

    from bench.adapters.base import discover
    from bench.core.console import console

    t = Table(title="adapters")
    for col in ("name", "kind", "trainable", "causal", "oracle", "description"):
        t.add_column(col)
    for name, f in sorted(discover().items()):
        a = f.adapter
        t.add_row(name, f.kind, "yes" if a.trainable else "", "yes" if a.causal else "", "yes" if a.oracle else "",
                  a.description)
    console.print(t)
    return 0


def register(subparsers) -> None:
    subparsers.add_parser("list", help="list the adapters (baselines and submissions)").set_defaults(func=cmd_list)
