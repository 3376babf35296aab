"""`bench noise examples` (bench.run.noise.write_examples): the listening examples of the README, written from a
prepared track: the clean and noisy test audio as 16-bit WAV, their scores, and one palette PNG of the
spectrograms."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from bench.core.audio import read_audio
from bench.run.noise import write_examples

from conftest import make_tiny_prepared


def test_examples_are_the_prepared_audio_with_scores_and_a_palette_png(tmp_path):
    pt = make_tiny_prepared(tmp_path, "tiny-examples", duration=1.0)
    utt = pt.utt_ids("test")[0]
    meta = write_examples(pt, tmp_path / "out", count=1)
    out = tmp_path / "out"
    assert list(meta["utterances"]) == [utt] and meta["protocol"]["sha256"] == pt.protocol.sha256
    assert json.loads((out / "examples.json").read_text()) == meta
    for kind, load in (("clean", pt.load_clean), ("noisy", pt.load_noisy)):
        wav, sr = read_audio(out / f"{utt}_{kind}.flac")
        assert sr == 16000 and np.abs(wav - load("test", utt)).max() <= 1 / 32768 + 1e-7   # PCM16 of the audio
    scores = meta["utterances"][utt]
    assert set(scores) == {"pesq_wb", "stoi", "si_sdr"} and 1.0 <= scores["pesq_wb"] <= 4.7
    png = Image.open(out / "spectrograms.png")
    assert png.mode == "P" and png.size[0] > 500   # palette PNG of the whole figure
