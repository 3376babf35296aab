"""`demucs`: Demucs for speech enhancement (Defossez, Synnaeve & Adi, Interspeech 2020), written
from scratch in baselines/demucs/model.py. The default config is the paper's causal H=48 model
(18.87 M parameters); the `quick` preset is a smaller causal model for a CPU run of minutes.

Latency: the config uses 14-zero-crossing sinc resampling filters (``sinc_zeros=14``) instead of the
model's default 56. That removes 126 samples of lookahead at H=48 / depth 5 / resample 4
(763 -> 637 samples, 47.69 -> 39.81 ms, within the DNS-challenge 40 ms rule) and changes no
parameter (18,867,937).

Online inference: `streamer` returns a `baselines.demucs.streamer.DemucsStreamer` (chunks of any size in,
enhanced audio out with a fixed delay of ``model.lookahead`` samples).
"""

from __future__ import annotations

import torch

from bench.adapters import Adapter

from .model import Demucs as DemucsNet


class Demucs(Adapter):
    name = "demucs"
    description = "Demucs (causal, waveform U-Net + LSTM), written from scratch after the paper"
    reference = "Defossez, Synnaeve & Adi, 'Real Time Speech Enhancement in the Waveform Domain', Interspeech 2020"
    trainable = True
    causal = True
    config = {"chin": 1, "chout": 1, "hidden": 48, "depth": 5, "kernel_size": 8, "stride": 4, "causal": True,
              "resample": 4, "growth": 2, "max_hidden": 10000, "normalize": True, "glu": True, "rescale": 0.1,
              "floor": 1e-3, "sinc_zeros": 14}
    # the paper: L1 + multi-resolution STFT loss, Adam lr 3e-4, batch 16 (4 s segments)
    train_config = {"loss": {"l1": 1.0, "mrstft": 1.0}, "lr": 3e-4, "batch_size": 16, "segment_seconds": 4.0}
    presets = {
        "quick": {"model": {"hidden": 24, "depth": 4, "resample": 2},
                  "train": {"max_minutes": 8.0, "batch_size": 8, "segment_seconds": 2.0, "lr": 1e-3,
                            "warmup_steps": 20, "schedule": "constant", "valid_every": 100}},
        # GPU: data workers to keep up with the GPU (noising a 16 x 4 s batch costs ~0.35 s of one core)
        "full": {"model": {}, "train": {"max_minutes": 60.0, "batch_size": 16, "segment_seconds": 4.0,
                                        "num_workers": 6, "valid_every": 200, "checkpoint_every": 1000}},
    }

    def build(self, **config) -> torch.nn.Module:
        return DemucsNet(**{**self.config, **config})

    def latency_ms(self, model) -> float | None:
        return model.algorithmic_latency_ms()

    def streamer(self, model):
        from .streamer import DemucsStreamer

        return DemucsStreamer(model) if getattr(model, "causal", False) else None
