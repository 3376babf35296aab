"""Oracle masks: computed from the clean *and* the noisy STFT, so they are upper bounds for
mask-based methods, shown on the leaderboard but never ranked.

``oracle-irm``: the ideal ratio mask (Wang, Narayanan & Wang, IEEE/ACM TASLP 2014), exponent 0.5:
``M = (|S|^2 / (|S|^2 + |N|^2)) ** 0.5`` with ``S`` the clean STFT and ``N = Y - S``.

``oracle-psm``: the phase-sensitive mask (Erdogan et al., ICASSP 2015), ``M = Re(S / Y)``
truncated to ``[0, max_gain]``: the best real-valued mask in the mean-squared-error sense. Unlike
the IRM it can also *raise* coefficients the protocol attenuated (gains up to ``max_gain``).

Both keep the noisy phase and cannot restore coefficients the protocol zeroed (``Y = 0``). On
this protocol the "noise" is not independent of the speech (zeroing and random gains), so the
IRM, derived for additive noise, is far from the best mask (it even lowers SI-SDR); the PSM
shows what a real mask can reach.
"""

from __future__ import annotations

import torch

from bench.adapters import Adapter
from bench.adapters.dsp import STFT


class OracleMask(torch.nn.Module):
    def __init__(self, kind: str = "irm", n_fft: int = 512, hop_length: int = 128, exponent: float = 0.5,
                 max_gain: float = 10.0):
        super().__init__()
        if kind not in ("irm", "psm"):
            raise ValueError(f"unknown oracle mask {kind!r}")
        self.kind, self.exponent, self.max_gain = kind, exponent, max_gain
        self.tf = STFT(n_fft, hop_length)

    def forward(self, noisy: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        Y, S = self.tf.stft(noisy), self.tf.stft(clean)
        if self.kind == "irm":
            ps, pn = S.abs() ** 2, (Y - S).abs() ** 2
            mask = (ps / (ps + pn).clamp_min(1e-12)) ** self.exponent
        else:
            py = Y.abs() ** 2
            mask = ((S * Y.conj()).real / py.clamp_min(1e-12)).clamp(0.0, self.max_gain)
        return self.tf.istft(mask * Y, noisy.shape[-1])


class _Oracle(Adapter):
    oracle = True

    def enhance(self, model, noisy, clean=None):
        if clean is None:
            raise ValueError(f"{self.name} is an oracle: it needs the clean reference")
        return model(noisy, clean)


class OracleIRM(_Oracle):
    name = "oracle-irm"
    description = "ideal ratio mask from clean + noisy STFT (oracle, not ranked)"
    reference = "Wang, Narayanan & Wang, IEEE/ACM TASLP 22(12), 2014"
    config = {"n_fft": 512, "hop_length": 128, "exponent": 0.5}

    def build(self, n_fft=512, hop_length=128, exponent=0.5) -> torch.nn.Module:
        return OracleMask("irm", n_fft, hop_length, exponent=exponent)


class OraclePSM(_Oracle):
    name = "oracle-psm"
    description = "phase-sensitive mask Re(S/Y) in [0, 10] from clean + noisy STFT (oracle, not ranked)"
    reference = "Erdogan, Hershey, Watanabe & Le Roux, ICASSP 2015"
    config = {"n_fft": 512, "hop_length": 128, "max_gain": 10.0}

    def build(self, n_fft=512, hop_length=128, max_gain=10.0) -> torch.nn.Module:
        return OracleMask("psm", n_fft, hop_length, max_gain=max_gain)
