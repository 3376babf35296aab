"""Write tests/golden/composite_reference.csv: CSIG/CBAK/COVL reference values from a third-party port.

    /work/main/.venv/bin/pip download --no-deps deepfilternet==0.5.6 -d /tmp/dfwheel
    unzip -o /tmp/dfwheel/deepfilternet-0.5.6-py3-none-any.whl df/sepm.py -d /tmp/dfsepm
    python scripts/make_composite_reference.py /tmp/dfsepm/df/sepm.py [--wheel WHL] [--data-root DIR]

The reference is ``composite()`` (and, for the component columns, ``llr()``, ``wss()``, ``SNRseg()``)
of ``df/sepm.py`` from the ``deepfilternet`` 0.5.6 wheel (MIT), a port of Loizou's MATLAB
``composite.m`` that runs with current SciPy. That file is loaded from the path given on the command
line and is never copied into this repository; only the numbers it returns are committed.

Inputs: the 35 real VoiceBank-DEMAND pairs of ``vbdemand-sample`` (16 kHz FLAC, read as float64 in
[-1, 1) with soundfile) and deterministic "enhanced-like" variants built from them by `variant` (no
random numbers, so the test rebuilds exactly the same signals): the clean signal plus the real
DEMAND noise ``noisy - clean`` scaled by 1, 0.5 or 0.1, a 2-tap low-passed clean signal plus 0.2 of
the noise, and the clean signal itself (identity, exercises the [1, 5] clipping) for a few utterances.
``tests/test_composite.py`` compares `bench.metrics.composite` with every row.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "golden" / "composite_reference.csv"
CORPUS = "vbdemand-sample"
#: name -> description; every variant is a pure function of (clean, noisy), see `variant`
VARIANTS = {
    "noisy": "the noisy file itself",
    "noise_x0.5": "clean + 0.5 * (noisy - clean): the real noise attenuated by 6.02 dB",
    "noise_x0.1": "clean + 0.1 * (noisy - clean): the real noise attenuated by 20 dB",
    "lowpass_noise_x0.2": "y[n] = 0.5*(clean[n] + clean[n-1]) (clean[-1] = 0) + 0.2 * (noisy - clean)",
    "identity": "the clean file itself",
}
IDENTITY_UTTERANCES = 3  # identity rows only for the first few utterances (they all clip to 5)
NUMBERS = ("pesq", "llr", "wss", "segsnr", "csig", "cbak", "covl")
COLUMNS = ["utt_id", "variant", "clean", "sha256_pcm16_clean", "noisy", "sha256_pcm16_noisy", "num_samples",
           *NUMBERS]


def variant(name: str, clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """The degraded signal of variant `name` (float64, same length as `clean`)."""
    noise = noisy - clean
    if name == "noisy":
        return noisy.copy()
    if name == "noise_x0.5":
        return clean + 0.5 * noise
    if name == "noise_x0.1":
        return clean + 0.1 * noise
    if name == "lowpass_noise_x0.2":
        smooth = 0.5 * clean
        smooth[1:] += 0.5 * clean[:-1]
        return smooth + 0.2 * noise
    if name == "identity":
        return clean.copy()
    raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")


def rows_to_compute(manifest: list[dict]) -> list[tuple[dict, str]]:
    out = []
    for i, row in enumerate(manifest):
        for name in VARIANTS:
            if name == "identity" and i >= IDENTITY_UTTERANCES:
                continue
            out.append((row, name))
    return out


def read_manifest(corpus_dir: Path) -> list[dict]:
    with open(corpus_dir / "manifest.csv", newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: r["utt_id"])


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sepm", type=Path, help="path of df/sepm.py extracted from the deepfilternet 0.5.6 wheel")
    p.add_argument("--wheel", type=Path, default=None,
                   help="the wheel it came from (its sha256 goes in the header)")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder holding vbdemand-sample/ (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)

    import soundfile as sf

    sys.path.insert(0, str(REPO))
    from bench.core.audio import sha256_pcm16, to_pcm16
    from bench.corpora.root import candidate_roots

    spec = importlib.util.spec_from_file_location("dfn_sepm_reference", args.sepm)
    sepm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sepm)

    roots = [args.data_root] if args.data_root else [r for _, r in candidate_roots(None)]
    corpus_dir = next((r / CORPUS for r in roots if (r / CORPUS / "manifest.csv").is_file()), None)
    if corpus_dir is None:
        p.error(f"{CORPUS}/manifest.csv not found under {', '.join(map(str, roots))}")
    manifest = read_manifest(corpus_dir)

    rows = []
    for row, name in rows_to_compute(manifest):
        clean, sr = sf.read(str(corpus_dir / row["clean"]), dtype="float64")
        noisy, sr2 = sf.read(str(corpus_dir / row["noisy"]), dtype="float64")
        assert sr == sr2 == 16000 and len(clean) == len(noisy) == int(row["num_samples"]), row["utt_id"]
        # the manifest hashes identify the inputs; check that the files are the ones it lists
        assert sha256_pcm16(to_pcm16(clean)) == row["sha256_pcm16_clean"], row["clean"]
        assert sha256_pcm16(to_pcm16(noisy)) == row["sha256_pcm16_noisy"], row["noisy"]
        est = variant(name, clean, noisy)
        pesq_mos, csig, cbak, covl, segsnr = sepm.composite(clean, est, sr)
        rows.append({"utt_id": row["utt_id"], "variant": name, "clean": row["clean"],
                     "sha256_pcm16_clean": row["sha256_pcm16_clean"], "noisy": row["noisy"],
                     "sha256_pcm16_noisy": row["sha256_pcm16_noisy"], "num_samples": len(clean),
                     "pesq": pesq_mos, "llr": sepm.llr(clean, est, sr), "wss": sepm.wss(clean, est, sr),
                     "segsnr": segsnr, "csig": csig, "cbak": cbak, "covl": covl})
        print(f"{row['utt_id']:9s} {name:20s} pesq {pesq_mos:.3f} csig {csig:.3f} cbak {cbak:.3f} "
              f"covl {covl:.3f}", flush=True)

    def ver(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    header = [
        "Reference composite measures (Hu & Loizou 2008) computed by a THIRD-PARTY implementation, for",
        "tests/test_composite.py. Produced by scripts/make_composite_reference.py; numbers only, "
        "no code copied.",
        "package: deepfilternet 0.5.6 (PyPI wheel deepfilternet-0.5.6-py3-none-any.whl"
        + (f", sha256 {_sha256_file(args.wheel)}" if args.wheel else "") + "), MIT licence",
        f"file: df/sepm.py (sha256 {_sha256_file(args.sepm)})",
        "functions: composite(clean, est, 16000) -> pesq, csig, cbak, covl, segsnr; "
        "llr(clean, est, 16000) and",
        "wss(clean, est, 16000) for the llr / wss columns. Its PESQ term is "
        "pesq.pesq(16000, clean, est, 'wb')",
        "(P.862.2 MOS-LQO).",
        f"run with: pesq {ver('pesq')}, numpy {np.__version__}, scipy {ver('scipy')}, "
        f"soundfile {ver('soundfile')}, "
        f"python {sys.version.split()[0]}",
        f"inputs: {CORPUS}/manifest.csv pairs (files and sha256_pcm16 in the columns), read as float64 with",
        "soundfile; est = variant(name, clean, noisy) of scripts/make_composite_reference.py:",
        *[f"  {k}: {v}" for k, v in VARIANTS.items()],
        f"  (identity only for the first {IDENTITY_UTTERANCES} utterances in utt_id order)",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        for line in header:
            f.write(f"# {line}\n")
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{float(v):.10g}" if k in NUMBERS else v) for k, v in r.items()})
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
