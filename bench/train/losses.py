"""Training losses on waveforms ``(batch, time)``, combinable by weight (`build_loss`): ``l1``, ``mrstft``
(its terms alone: ``mrstft_sc``, ``mrstft_mag``), ``si_sdr`` (level and sign free), ``snr`` (level- and
sign-aware, same dB units). Every term is a mean over the batch items, which data-parallel training relies
on (docs/training.md, "Losses")."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.train.options import LOSSES

EPS = 1e-8


def l1_loss(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(est, ref)


def neg_si_sdr(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    noise = est - target
    ratio = target.pow(2).sum(-1) / (noise.pow(2).sum(-1) + eps)
    return -(10 * torch.log10(ratio + eps)).mean()


def neg_snr(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    ratio = ref.pow(2).sum(-1) / ((est - ref).pow(2).sum(-1) + eps)
    return -(10 * torch.log10(ratio + eps)).mean()


class MultiResolutionSTFTLoss(torch.nn.Module):
    def __init__(self, fft_sizes=(512, 1024, 2048), hops=(50, 120, 240), win_lengths=(240, 600, 1200)):
        super().__init__()
        self.resolutions = list(zip(fft_sizes, hops, win_lengths))
        for i, (_, _, w) in enumerate(self.resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(w), persistent=False)

    @staticmethod
    def _mag(x, n_fft, hop, win, window):
        X = torch.stft(x, n_fft, hop, win, window, return_complex=True)
        return (X.real.pow(2) + X.imag.pow(2)).clamp_min(1e-7).sqrt()

    def terms(self, est: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(spectral convergence, log-magnitude L1), each averaged over the resolutions."""
        sc_total, mag_total = est.new_zeros(()), est.new_zeros(())
        for i, (n_fft, hop, win) in enumerate(self.resolutions):
            window = getattr(self, f"window{i}").to(est.dtype)
            e, r = self._mag(est, n_fft, hop, win, window), self._mag(ref, n_fft, hop, win, window)
            sc = torch.linalg.norm(r - e, dim=(-2, -1)) / torch.linalg.norm(r, dim=(-2, -1)).clamp_min(EPS)
            sc_total = sc_total + sc.mean()
            mag_total = mag_total + F.l1_loss(torch.log(e), torch.log(r))
        return sc_total / len(self.resolutions), mag_total / len(self.resolutions)

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        sc, mag = self.terms(est, ref)
        return sc + mag


class CompositeLoss(torch.nn.Module):
    """Weighted sum of named losses; `forward` returns (total, {name: value})."""

    NAMES = LOSSES

    def __init__(self, weights: dict[str, float]):
        super().__init__()
        if set(weights) - set(self.NAMES) or not weights:
            raise ValueError(f"loss weights {weights}: choose among {self.NAMES}")
        self.weights = dict(weights)
        self.mrstft = MultiResolutionSTFTLoss() if {"mrstft", "mrstft_sc", "mrstft_mag"} & set(weights) else None

    def forward(self, est: torch.Tensor, ref: torch.Tensor):
        parts = {}
        est, ref = est.float(), ref.float()
        if "l1" in self.weights:
            parts["l1"] = l1_loss(est, ref)
        if self.mrstft is not None:
            sc, mag = self.mrstft.terms(est, ref)
            for name, value in (("mrstft", sc + mag), ("mrstft_sc", sc), ("mrstft_mag", mag)):
                if name in self.weights:
                    parts[name] = value
        if "si_sdr" in self.weights:
            parts["si_sdr"] = neg_si_sdr(est, ref)
        if "snr" in self.weights:
            parts["snr"] = neg_snr(est, ref)
        return sum(self.weights[k] * v for k, v in parts.items()), parts


build_loss = CompositeLoss   # the trainer's name for it: the loss of a ``loss`` option (weights by name)
