"""`bench noise examples`' work: clean/noisy pairs (16-bit FLAC) and a clean-vs-noisy spectrogram figure,
made by the real protocol from prepared test utterances, plus their PESQ-WB / STOI / SI-SDR."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from bench.core.audio import write_wav_pcm16
from bench.core.errors import BenchError
from bench.data.prepared import PreparedTrack
from bench.metrics.registry import compute_all

DEFAULT_UTTERANCES = ("p232_005", "p257_011", "p232_170")


def write_examples(pt: PreparedTrack, out_dir: Path, utt_ids: list[str] | None = None, count: int = 3) -> dict:
    import matplotlib   # loaded only to draw the figure; the Agg backend needs no display

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    pt.require()
    test_ids = pt.utt_ids("test")
    if unknown := sorted(set(utt_ids or ()) - set(test_ids)):
        raise BenchError(f"--utterances: {', '.join(unknown)} not in the test split of {pt.track.name}",
                         hint=f"e.g. {', '.join(test_ids[:5])}")
    wanted = ([u for u in (utt_ids or DEFAULT_UTTERANCES) if u in test_ids] or test_ids)[:count]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    proto = pt.protocol
    hop, sr = proto.spec["stft"]["hop_length"], proto.sample_rate
    fig, axes = plt.subplots(len(wanted), 2, figsize=(12, 3.2 * len(wanted)), squeeze=False)
    scores = {}
    for i, utt in enumerate(wanted):
        clean, noisy = pt.load_clean("test", utt), pt.load_noisy("test", utt)
        write_wav_pcm16(out_dir / f"{utt}_clean.flac", clean)   # 16-bit FLAC: lossless, about half a WAV
        write_wav_pcm16(out_dir / f"{utt}_noisy.flac", noisy)
        vals, _ = compute_all(clean, noisy, metrics=["pesq_wb", "stoi", "si_sdr"])
        scores[utt] = {k: round(float(v), 3) for k, v in vals.items()}
        for ax, name, sig in ((axes[i, 0], "clean", clean), (axes[i, 1], "noisy", noisy)):
            S = 20 * np.log10(np.abs(proto.stft(sig)) + 1e-8)
            ax.imshow(S, origin="lower", aspect="auto", cmap="magma", vmin=S.max() - 80, vmax=S.max(),
                      extent=[0, S.shape[1] * hop / sr, 0, sr / 2000])
            scores_text = f"  (PESQ-WB {vals['pesq_wb']:.2f}, STOI {vals['stoi']:.2f})" if name == "noisy" else ""
            ax.set_title(f"{utt} {name}{scores_text}", fontsize=10)
            ax.set(ylabel="kHz", xlabel="s")
    fig.suptitle(f"Protocol {proto.name} (sha256 {proto.sha256[:12]}): clean vs noisy, vctk-mini test", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    plt.close(fig)
    # a 256-colour palette PNG: the magma colour map survives it and the file is 40 % of the RGBA one
    Image.open(buf).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                            dither=Image.Dither.NONE).save(out_dir / "spectrograms.png", optimize=True)
    meta = {"protocol": proto.record(), "track": pt.track.name, "utterances": scores}
    (out_dir / "examples.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
