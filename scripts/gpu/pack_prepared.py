"""Carry a prepared track to a machine without the corpus (e.g. a lent GPU machine) in half the bytes.

    python scripts/gpu/pack_prepared.py pack   prepared/vctk-mini  .devdata/vctk-mini   # WAV -> FLAC
    python scripts/gpu/pack_prepared.py unpack .devdata/vctk-mini  prepared/vctk-mini   # FLAC -> WAV

FLAC is lossless for PCM16, so the unpacked WAVs hold exactly the samples `bench data prepare` wrote;
`unpack` checks every file against the `sha256_pcm16` column of the prepared manifests and stops
naming the first file that differs. Manifests and JSON records are copied as they are.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import soundfile as sf

from bench.core.audio import file_sha256_pcm16


def _expected(root: Path) -> dict[Path, str]:
    out = {}
    for manifest in root.rglob("manifest.csv"):
        with open(manifest, newline="") as fh:
            for row in csv.DictReader(fh):
                out[manifest.parent / row["split"] / row["utt_id"]] = row["sha256_pcm16"]
    return out


def convert(src: Path, dst: Path, ext_in: str, ext_out: str, fmt: str) -> int:
    n = 0
    for p in sorted(src.rglob("*")):
        if p.is_dir():
            continue
        q = dst / p.relative_to(src)
        q.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix == ext_in:
            data, sr = sf.read(p, dtype="int16", always_2d=False)
            q = q.with_suffix(ext_out)
            tmp = q.with_name(q.name + ".tmp")
            sf.write(tmp, data, sr, subtype="PCM_16", format=fmt)
            tmp.replace(q)
            n += 1
        elif p.suffix in (".csv", ".json"):
            shutil.copy2(p, q)
    return n


def check(root: Path) -> None:
    expected = _expected(root)
    for stem, sha in expected.items():
        path = stem.with_suffix(".wav")
        if not path.exists():
            sys.exit(f"{path}: missing after unpack")
        if file_sha256_pcm16(path) != sha:
            sys.exit(f"{path}: samples differ from the prepared manifest (sha256_pcm16)")
    print(f"{root}: {len(expected)} files match their manifests")


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[0] not in ("pack", "unpack"):
        sys.exit(__doc__)
    mode, src, dst = argv[0], Path(argv[1]), Path(argv[2])
    if mode == "pack":
        n = convert(src, dst, ".wav", ".flac", "FLAC")
    else:
        n = convert(src, dst, ".flac", ".wav", "WAV")
        check(dst)
    print(f"{mode}: {n} audio files {src} -> {dst}")


if __name__ == "__main__":
    main(sys.argv[1:])
