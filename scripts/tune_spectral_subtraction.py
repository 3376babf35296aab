"""Choose spectral subtraction's parameters on the vctk-mini *valid* split (never on test).

    python scripts/tune_spectral_subtraction.py [--prepared-dir DIR]

Prints PESQ-WB / SI-SDR / STOI of the noisy input and of each setting of a small grid; the
adapter's defaults in baselines/spectral_subtraction.py are the best PESQ-WB setting here.
"""

from __future__ import annotations

import argparse
import itertools
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch


def _metrics(args):
    from bench.metrics.registry import compute_all

    clean, est = args
    v, _ = compute_all(clean, est, 16000, ["pesq_wb", "si_sdr", "stoi"])
    return v


def main():
    from bench.data.prepared import PreparedTrack
    from bench.corpora.root import prepared_root
    from bench.data.tracks import load_track
    from bench.protocol import Protocol

    sys_path_root()
    from baselines.spectral_subtraction import SpectralSubtractor

    ap = argparse.ArgumentParser()
    ap.add_argument("--prepared-dir", default=None)
    args = ap.parse_args()
    pt = PreparedTrack(load_track("vctk-mini"), Protocol.load(), prepared_root(args.prepared_dir))
    ids = pt.utt_ids("valid")
    clean = [pt.load_clean("valid", u) for u in ids]
    noisy = [pt.load_noisy("valid", u) for u in ids]
    grid = {"alpha_max": [2.0, 4.0, 6.0], "floor": [0.01, 0.05, 0.1], "quiet_fraction": [0.05, 0.1, 0.2]}
    with ProcessPoolExecutor() as ex:
        base = list(ex.map(_metrics, zip(clean, noisy)))
        print("noisy  " + "  ".join(f"{k} {np.mean([b[k] for b in base]):.3f}" for k in base[0]))
        for values in itertools.product(*grid.values()):
            cfg = dict(zip(grid, values))
            model = SpectralSubtractor(**cfg)
            with torch.inference_mode():
                est = [model(torch.from_numpy(n)[None])[0].numpy() for n in noisy]
            res = list(ex.map(_metrics, zip(clean, est)))
            print(f"{cfg}  " + "  ".join(f"{k} {np.mean([r[k] for r in res]):.3f}" for k in res[0]), flush=True)


def sys_path_root():
    import sys

    from bench import REPO_ROOT

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


if __name__ == "__main__":
    main()
