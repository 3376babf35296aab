"""`rnnoise`: RNNoise (Valin, MMSP 2018), pretrained, the C library shipped by `pyrnnoise`.

External reference system, not trained here. `pyrnnoise` 0.4.5 ships ``librnnoise.so`` (xiph's
RNNoise with its built-in model compiled in; the symbols show the 0.2-generation network: two
convolutions and GRUs with int8 weights) and a ctypes binding (`pyrnnoise.rnnoise`). Its high-level
`RNNoise` class resamples and quantizes to int16 with PyAV filter graphs; this adapter calls the
binding's library handle directly instead: ``rnnoise_process_frame`` on 480-sample (10 ms) frames
at 48 kHz in the library's native scale (float samples in int16 units, not quantized), one fresh
state per utterance (``rnnoise_create`` / ``rnnoise_destroy``).

Per utterance: 16 kHz -> 48 kHz with the benchmark's resampler, zeros appended (the library's output
trails its input by 960 samples, 20 ms, measured: the cross-correlation peak of output and input),
frames in, the output read from sample 960, cropped, back to 16 kHz.
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from bench.adapters import Adapter

from .._external import PerUtterance, pad_to_multiple, require, resampling_lookahead_ms

PACKAGE = "pyrnnoise==0.4.5"
PIP = f"pip install '{PACKAGE}', or every external system: make install-external"
MODEL_RATE = 48000
FRAME = 480
#: output delay of rnnoise_process_frame in samples at 48 kHz (measured; see tests/test_external.py)
DELAY = 960
INT16 = 32768.0


class Rnnoise(Adapter):
    name = "rnnoise"
    description = ("RNNoise, pretrained (librnnoise of pyrnnoise 0.4.5, 48 kHz, causal, 20 ms); external, "
                   "pretrained on other data")
    reference = ("Valin, A Hybrid DSP/Deep Learning Approach to Real-Time Full-Band Speech Enhancement, "
                 "MMSP 2018; https://arxiv.org/abs/1709.08243")
    trainable = False
    causal = True
    external = True
    pretrained_on = ("the built-in model of xiph's RNNoise library; pyrnnoise does not declare which release "
                     "or data (the 2018 paper's model: 6 h of speech, McGill TSP and NTT Multi-Lingual, "
                     "and 4 h of noise)")
    package = PACKAGE
    import_name = "pyrnnoise.rnnoise"
    config = {}

    def build(self) -> torch.nn.Module:
        rn = require(self.import_name, PIP)
        if int(rn.FRAME_SIZE) != FRAME or int(rn.SAMPLE_RATE) != MODEL_RATE:
            raise RuntimeError(f"librnnoise frames are {rn.FRAME_SIZE} samples at {rn.SAMPLE_RATE} Hz, not "
                               f"{FRAME} at {MODEL_RATE}: is it the pinned {PACKAGE}?")
        lib = rn.lib

        def process(x: np.ndarray) -> np.ndarray:
            audio = (pad_to_multiple(x, FRAME, extra=DELAY) * INT16).astype(np.float32)
            out = np.empty_like(audio)
            buf = np.empty(FRAME, np.float32)
            ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            state = lib.rnnoise_create(None)
            try:
                for start in range(0, audio.shape[0], FRAME):
                    buf[:] = audio[start:start + FRAME]
                    lib.rnnoise_process_frame(state, ptr, ptr)
                    out[start:start + FRAME] = buf
            finally:
                lib.rnnoise_destroy(state)
            return out[DELAY:DELAY + x.shape[0]] / INT16

        return PerUtterance(process, MODEL_RATE, "RNNoise (librnnoise, pyrnnoise)")

    def latency_ms(self, model) -> float:
        return 1000.0 * (DELAY + FRAME - 1) / MODEL_RATE + resampling_lookahead_ms(MODEL_RATE)
