"""`bench list`: the adapters (baselines and submissions) in a table."""

from __future__ import annotations

from bench.cli.args import command


def cmd_list(args) -> int:
    from bench.adapters.base import discover
    from bench.core.console import console, table

    t = table("adapters", ("name", "kind", "trainable", "causal", "oracle", "description"))
    for name, f in sorted(discover().items()):
        a = f.adapter
        t.add_row(name, f.kind, *("yes" if v else "" for v in (a.trainable, a.causal, a.oracle)), a.description)
    console.print(t)
    return 0


def register(subparsers) -> None:
    command(subparsers, "list", cmd_list, help="list the adapters (baselines and submissions)")
