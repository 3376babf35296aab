"""Write the golden reference outputs of a noising protocol: tests/golden/<protocol>/.

    python scripts/make_golden.py [--protocol stft-v1] [--data-root DIR] [--force]

Takes 3 real vctk-mini test utterances (read through `bench.core.audio.load_16k`, cropped to their first
1.5 s), applies the protocol with the frozen stream and global seed, and stores the noisy outputs as
16-bit WAV plus ``golden.json`` (utterance ids, source paths and hashes, input hashes, the protocol
record with its sha256). ``tests/test_protocol.py`` recomputes them and allows at most 2 LSB / needs
SNR > 60 dB, which any parameter change fails.

REGENERATING IS ONLY LEGITIMATE WITH A PROTOCOL VERSION BUMP. The golden files pin what a protocol
*is*: published scores were computed on exactly this audio. If the golden test fails because a spec
changed, do not regenerate: restore the spec and put the change in a new version file
(``bench/protocol/stft-v2.json``, name ``stft-v2``), then run this script with ``--protocol stft-v2``,
which adds ``tests/golden/stft-v2/`` next to the untouched v1 golden. The script refuses to overwrite a
golden whose protocol sha256 differs from the current spec, or whose audio it would change;
``--force`` overrides that and must come with a written justification in the change (e.g. the project
decided to move the reference platform), never with an edited spec of an existing version.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
GOLDEN_DIR = REPO / "tests" / "golden"
UTTERANCES = ["p232_010", "p232_043", "p257_054"]  # vctk-mini test speakers, 16 kHz sources
CROP_SECONDS = 1.5


def main(argv=None) -> int:
    sys.path.insert(0, str(REPO))
    from bench.core.audio import load_16k, sha256_pcm16, to_pcm16, write_wav_pcm16
    from bench.corpora.root import resolve_data_root
    from bench.data.tracks import load_track
    from bench.protocol import DEFAULT_PROTOCOL, FROZEN_STREAM, Protocol

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", default=DEFAULT_PROTOCOL)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--force", action="store_true", help="overwrite a golden that would change (see the module doc)")
    args = ap.parse_args(argv)

    proto = Protocol.load(args.protocol)
    track = load_track("vctk-mini")
    corpus = resolve_data_root(args.data_root, track)
    rows = {u.utt_id: u for u in track.utterances()}
    out = GOLDEN_DIR / proto.name
    old = json.loads((out / "golden.json").read_text()) if (out / "golden.json").exists() else None
    if old and old["protocol"]["sha256"] != proto.sha256 and not args.force:
        print(f"refusing: {out} was made for {proto.name} with sha256 {old['protocol']['sha256'][:12]}..., the spec "
              f"now hashes to {proto.sha256[:12]}.... A changed spec needs a version bump (a new "
              f"bench/protocol/<id>-v<N+1>.json), not new golden files.", file=sys.stderr)
        return 2

    crop = int(round(CROP_SECONDS * proto.sample_rate))
    items, outputs = [], {}
    for utt in UTTERANCES:
        row = rows[utt]
        x = load_16k(corpus / row.path)[:crop]
        q = to_pcm16(proto.apply(x, utt, stream=FROZEN_STREAM, seed=proto.global_seed))
        outputs[f"{utt}.wav"] = q
        items.append({"utt_id": utt, "source_path": row.path, "source_sha256_pcm16": row.sha256_pcm16,
                      "input_sha256_pcm16": sha256_pcm16(to_pcm16(x)), "file": f"{utt}.wav",
                      "output_sha256_pcm16": sha256_pcm16(q)})
    if old and not args.force:
        before = {i["file"]: i["output_sha256_pcm16"] for i in old["items"]}
        after = {i["file"]: i["output_sha256_pcm16"] for i in items}
        if before != after:
            print(f"refusing: the outputs of {proto.name} differ from the stored golden on this machine; "
                  "the golden test decides whether that is within tolerance. See the module doc.", file=sys.stderr)
            return 2
    meta = {
        "note": ("Golden outputs of the noising protocol; regenerate only with a protocol version bump "
                 "(see scripts/make_golden.py)."),
        "protocol": proto.record(),
        "track": track.name,
        "stream": FROZEN_STREAM,
        "seed": proto.global_seed,
        "sample_rate": proto.sample_rate,
        "crop_samples": crop,
        "items": items,
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, q in outputs.items():
        write_wav_pcm16(out / name, q, proto.sample_rate)
    (out / "golden.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(items)} golden outputs of {proto.name} ({proto.sha256[:12]}...) to {out}")
    assert all(np.max(np.abs(q)) > 0 for q in outputs.values())
    return 0


if __name__ == "__main__":
    sys.exit(main())
