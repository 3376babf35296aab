"""`spectral-subtraction`: power spectral subtraction with over-subtraction and a spectral floor.

Method: Berouti, Schwartz & Makhoul, "Enhancement of speech corrupted by acoustic noise",
ICASSP 1979 (over-subtraction factor alpha that falls with the frame's SNR, spectral floor beta),
on the power spectrum of Boll (IEEE TASSP 1979), with the noise power spectrum estimated from the
signal's own quiet frames: the mean power, per frequency bin, of the `quiet_fraction` of frames
with the least energy (a stationary-noise assumption that fits the protocol's hiss floor, whose
level and tilt are fixed per utterance). Gain per coefficient::

    G^2 = max(1 - alpha(t) * N(f) / |Y(f,t)|^2, beta),   alpha(t) = clip(a_max - slope * SNR(t), a_min, a_max)

applied to the noisy STFT, keeping its phase. No library implements exactly this in torch
(``noisereduce`` does spectral gating, a different rule), so it is written here, in torch,
batched over utterances and valid for any length. Parameters were chosen on the vctk-mini
*valid* split (see the README), never on test.
"""

from __future__ import annotations

import torch

from bench.adapters import Adapter
from bench.adapters.dsp import STFT


class SpectralSubtractor(torch.nn.Module):
    def __init__(self, n_fft=512, hop_length=128, quiet_fraction=0.1, noise_bias=1.0, alpha_max=4.0,
                 alpha_min=1.0, snr_low_db=-5.0, snr_high_db=20.0, floor=0.02):
        super().__init__()
        self.tf = STFT(n_fft, hop_length)
        self.quiet_fraction, self.noise_bias, self.floor = quiet_fraction, noise_bias, floor
        self.alpha_max, self.alpha_min = alpha_max, alpha_min
        self.snr_low_db, self.snr_high_db = snr_low_db, snr_high_db

    def noise_psd(self, power: torch.Tensor) -> torch.Tensor:
        """(batch, freq, frames) power -> (batch, freq, 1) mean power of the quietest frames."""
        frames = power.shape[-1]
        k = max(1, int(round(self.quiet_fraction * frames)))
        energy = power.sum(dim=1)                                   # (batch, frames)
        idx = energy.topk(k, dim=-1, largest=False).indices          # quietest frames
        quiet = torch.gather(power, 2, idx[:, None, :].expand(-1, power.shape[1], -1))
        return self.noise_bias * quiet.mean(dim=-1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        X = self.tf.stft(x)
        P = X.real ** 2 + X.imag ** 2
        N = self.noise_psd(P)
        snr = 10 * torch.log10(P.sum(1, keepdim=True).clamp_min(1e-12) / (N.sum(1, keepdim=True) + 1e-12))
        slope = (self.alpha_max - self.alpha_min) / (self.snr_high_db - self.snr_low_db)
        alpha = (self.alpha_max - slope * (snr - self.snr_low_db)).clamp(self.alpha_min, self.alpha_max)
        gain2 = (1 - alpha * N / P.clamp_min(1e-12)).clamp_min(self.floor)
        return self.tf.istft(X * gain2.sqrt(), x.shape[-1])


class SpectralSubtraction(Adapter):
    name = "spectral-subtraction"
    description = "power spectral subtraction (Berouti over-subtraction + floor), noise from the quietest frames"
    reference = "Boll, IEEE TASSP 1979; Berouti, Schwartz & Makhoul, ICASSP 1979"
    # chosen on the vctk-mini valid split by scripts/tune_spectral_subtraction.py (removed: docs/scripts.md)
    config = {"n_fft": 512, "hop_length": 128, "quiet_fraction": 0.2, "noise_bias": 1.0, "alpha_max": 6.0,
              "alpha_min": 1.0, "snr_low_db": -5.0, "snr_high_db": 20.0, "floor": 0.01}

    def build(self, **config) -> torch.nn.Module:
        return SpectralSubtractor(**{**self.config, **config})
