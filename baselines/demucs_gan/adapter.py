"""`demucs-gan`: the causal Demucs of baselines/demucs trained as the generator of a GAN, with HiFi-GAN's
multi-period (periods 2, 3, 5, 7, 11) and multi-scale (3 scales) waveform discriminators, LSGAN and
feature-matching losses added to Demucs's own L1 + multi-resolution STFT loss (bench/train/adversarial.py).

Twin of `demucs`: the same generator class, model configs, streamer and training configs (batch, segment,
lr, schedule, regression loss, seed, budget) of every preset, read from the `demucs` adapter; only the
``"adversarial"`` block is added. `bench compare` of the two, trained to the same number of steps,
measures what the adversarial loss buys. The discriminators are training state only (never scored or
shipped); the `quick` preset narrows them (``width``) to keep a CPU step within about 2x a `demucs` step.
Model card and recipe: baselines/demucs_gan/README.md.
"""

from __future__ import annotations

import torch

from ..demucs.adapter import Demucs
from .discriminators import HiFiGANDiscriminator

#: LSGAN + feature matching. Weights: HiFi-GAN's (adversarial 1, feature matching 2, mel 45; summed over its 8
#: sub-discriminators and their 54 feature maps) divided by 45, our regression loss in its mel loss's place,
#: and converted to our averages: 8 / 45 = 0.18 and 2 * 54 / 45 = 2.4 (README.md, "Recipe")
ADVERSARIAL = {"loss": "lsgan", "adv_weight": 0.18, "fm_weight": 2.4, "lr": 2e-4, "betas": [0.8, 0.99],
               "weight_decay": 0.0, "d_steps": 1, "grad_clip": None}


def _twin(preset: str, **adversarial) -> dict:
    """The `demucs` preset `preset` with an adversarial block."""
    p = Demucs.presets[preset]
    return {"model": dict(p.get("model", {})),
            "train": {**p.get("train", {}), "adversarial": {**ADVERSARIAL, **adversarial}}}


class DemucsGAN(Demucs):
    name = "demucs-gan"
    description = "Demucs (causal) + HiFi-GAN multi-period/multi-scale discriminators (LSGAN, feature matching)"
    reference = ("Defossez et al., Interspeech 2020 (generator); Kong et al., HiFi-GAN, NeurIPS 2020 "
                 "(discriminators, feature matching); Mao et al., LSGAN, ICCV 2017")
    train_config = {**Demucs.train_config, "adversarial": {**ADVERSARIAL, "warmup_steps": 2000, "segment_seconds": 1.0}}
    presets = {
        # CPU: 1/16 of HiFi-GAN's channels on 0.5 s windows, about 1.65x the CPU time of a `demucs` quick step
        # (scripts/bench_gan_step.py)
        "quick": _twin("quick", warmup_steps=200, segment_seconds=0.5, discriminator={"width": 0.0625}),
        # GPU: HiFi-GAN's discriminators at full width on 1 s windows
        "full": _twin("full", warmup_steps=2000, segment_seconds=1.0, discriminator={"width": 1.0}),
    }

    def discriminator(self, **config) -> torch.nn.Module:
        return HiFiGANDiscriminator(**config)
