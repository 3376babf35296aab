"""`bench noise examples | show`: example pairs made by the noising protocol (bench/run/noise.py), and the
protocol's spec with its hash."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cli.args import add_dirs, command, positive_int


def cmd_examples(args) -> int:
    from bench import REPO_ROOT
    from bench.cli.data import prepared_track
    from bench.core.console import console, table
    from bench.run.noise import write_examples

    pt = prepared_track(args, prepare_if_missing=True)
    out = Path(args.out) if args.out else REPO_ROOT / "docs" / "noise-examples"
    meta = write_examples(pt, out, args.utterances, args.count)
    t = table(f"noise examples ({pt.protocol.name}) -> {out}", ("utterance", "PESQ-WB", "STOI", "SI-SDR"))
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
    p = command(noise, "examples", cmd_examples,
                help="write clean/noisy example pairs (WAV) and a spectrogram figure (PNG)")
    add_dirs(p)
    p.add_argument("--out", default=None, help="output folder (default: docs/noise-examples)")
    p.add_argument("--count", type=positive_int, default=3, help="number of example utterances (>= 1)")
    p.add_argument("--utterances", nargs="*", default=None)
    p = command(noise, "show", cmd_show, help="print the protocol spec and its hash")
    p.add_argument("--protocol", default=None)
