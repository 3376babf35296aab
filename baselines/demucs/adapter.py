"""`demucs`: Demucs for speech enhancement (Defossez, Synnaeve & Adi, Interspeech 2020), written
from scratch in baselines/demucs/model.py. The default config is the paper's causal H=48 model
(18.87 M parameters) with 14-zero sinc resampling filters (39.81 ms of latency); the `quick` preset is a
smaller causal model for a CPU run of minutes. Online inference: `streamer` returns a
`baselines.demucs.streamer.DemucsStreamer`.

The model card, baselines/demucs/README.md, holds the training recipe (the ``full`` preset follows the
authors' code), the latency arithmetic and the recipes tried for ``quick``.
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
    # the reference recipe (README.md, the model card): L1 + MR-STFT (SC and log-magnitude at 0.5 each),
    # Adam lr 3e-4, betas (0.9, 0.999), batch 64, 4 s segments
    train_config = {"loss": {"l1": 1.0, "mrstft_sc": 0.5, "mrstft_mag": 0.5}, "lr": 3e-4, "betas": [0.9, 0.999],
                    "weight_decay": 0.0, "batch_size": 64, "segment_seconds": 4.0}
    presets = {
        "quick": {"model": {"hidden": 24, "depth": 4, "resample": 2},
                  "train": {"max_steps": 2400, "max_minutes": None, "batch_size": 8, "segment_seconds": 2.0,
                            "lr": 1e-3, "loss": {"l1": 1.0, "mrstft": 1.0, "si_sdr": 0.3}, "warmup_steps": 20,
                            "schedule": "cosine", "valid_every": 200, "checkpoint_every": 200}},
        # GPU; num_workers only serves the numpy data path (noise=numpy), kept to compare it
        "full": {"model": {}, "train": {"max_steps": 20000, "max_minutes": None, "batch_size": 64, "segment_seconds": 4.0,
                                        "num_workers": 6, "valid_every": 200, "checkpoint_every": 1000}},
    }

    def build(self, **config) -> torch.nn.Module:
        return DemucsNet(**{**self.config, **config})

    def latency_ms(self, model) -> float | None:
        return model.algorithmic_latency_ms()

    def streamer(self, model):
        from .streamer import DemucsStreamer

        return DemucsStreamer(model) if getattr(model, "causal", False) else None
