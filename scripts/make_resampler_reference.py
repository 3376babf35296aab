"""Write tests/golden/resampler-p239_001.csv: the pinned resampler (`bench.core.audio.resample`) applied to the
real 48 kHz recording p239_001 of ../shared/data/vctk-mini, summarized per 1024-sample block of the
16 kHz output (RMS, energy above 7 kHz in dB, and the block's first sample). tests/test_hardening.py
compares a fresh resampling with it; a changed rolloff, filter width, beta or method changes the
7-8 kHz energy by far more than its tolerance.

    python scripts/make_resampler_reference.py [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from bench import REPO_ROOT
from bench.core.audio import resample

SOURCE = "vctk-mini/wav48/p239/p239_001.flac"
OUT = REPO_ROOT / "tests" / "golden" / "resampler-p239_001.csv"
BLOCK = 1024
HIGH_HZ = 7000.0


def block_features(y: np.ndarray) -> list[dict]:
    """Per 1024-sample block of 16 kHz audio: RMS, Hann-windowed energy above 7 kHz (dB), first sample."""
    k = len(y) // BLOCK
    blocks = y[: k * BLOCK].reshape(k, BLOCK).astype(np.float64)
    spec = np.abs(np.fft.rfft(blocks * np.hanning(BLOCK), axis=1)) ** 2
    high = spec[:, np.fft.rfftfreq(BLOCK, 1 / 16000) >= HIGH_HZ].sum(axis=1)
    return [{"block": i, "rms": float(np.sqrt(np.mean(b ** 2))), "high_db": float(10 * np.log10(h + 1e-30)),
             "first": float(b[0])} for i, (b, h) in enumerate(zip(blocks, high))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=str(REPO_ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    x, sr = sf.read(str(Path(args.data_root) / SOURCE), dtype="float32")
    assert sr == 48000, sr
    rows = block_features(resample(x, sr, 16000))
    with open(OUT, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["block", "rms", "high_db", "first"], lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({"block": r["block"], "rms": f"{r['rms']:.9e}", "high_db": f"{r['high_db']:.6f}",
                        "first": f"{r['first']:.9e}"})
    print(f"wrote {OUT} ({len(rows)} blocks)")


if __name__ == "__main__":
    main()
