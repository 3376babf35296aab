"""`bench noise examples | show`: example pairs made by the noising protocol (bench/run/noise.py), and the
protocol's spec with its hash."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cli.args import add_dirs, add_track, positive_int


def cmd_examples(args) -> int:
    from rich.table import Table

    from bench import REPO_ROOT
    from bench.cli.data import prepared_track
    from bench.core.console import console
    from bench.run.noise import write_examples

    pt = prepared_track(args, prepare_if_missing=True)
    out = Path(args.out) if args.out else REPO_ROOT / "docs" / "noise-examples"
    meta = write_examples(pt, out, args.utterances, args.count)
    t = Table(title=f"noise examples ({pt.protocol.name}) -> {out}")
    for col in ("utterance", "PESQ-WB", "STOI", "SI-SDR"):
        t.add_column(col)
    for utt, s in meta["utterances"].items():
        t.add_row(utt, f"{s['pesq_wb']:.2f}", f"{s['stoi']:.3f}", f"{s['si_sdr']:.1f}")
    console.print(t)
    return 0


def cmd_show(args) -> int:
    from bench.core.console import console
    from bench.protocol import DEFAULT_PROTOCOL, Protocol

    p = Protocol.load(args.protocol or DEFAULT_PROTOCOL)
    console.print_json(json.dumps({"sha256": p.sha256, **p.spec}))
    return 0


def register(subparsers) -> None:
    noise = subparsers.add_parser("noise", help="the noising protocol").add_subparsers(dest="noise_cmd", required=True)
    p = noise.add_parser("examples", help="write clean/noisy example pairs (WAV) and a spectrogram figure (PNG)")
    add_track(p)
    add_dirs(p)
    p.add_argument("--out", default=None, help="output folder (default: docs/noise-examples)")
    p.add_argument("--count", type=positive_int, default=3, help="number of example utterances (>= 1)")
    p.add_argument("--utterances", nargs="*", default=None)
    p.set_defaults(func=cmd_examples)
    p = noise.add_parser("show", help="print the protocol spec and its hash")
    p.add_argument("--protocol", default=None)
    p.set_defaults(func=cmd_show)
