"""The train split's clean audio resident on the training device (one flat tensor, int16 when the audio is
exactly PCM16), and training segments chosen and cut from it there by the same laws as the numpy path."""

from __future__ import annotations

import numpy as np
import torch

PCM16_SCALE = 32768.0


def _flat(clean: dict[str, np.ndarray], ids: list[str], total: int) -> np.ndarray:
    """The utterances `ids` end to end: int16 when exactly PCM16 (scaling by 2**15 is exact), else float32."""
    out = np.empty(total, dtype=np.int16)
    at = 0
    for u in ids:
        q = np.asarray(clean[u], dtype=np.float32) * np.float32(PCM16_SCALE)
        if not (np.array_equal(q, np.round(q)) and q.min(initial=0) >= -32768 and q.max(initial=0) <= 32767):
            return np.concatenate([np.asarray(clean[v], dtype=np.float32) for v in ids])
        out[at:at + len(q)] = q
        at += len(q)
    return out


class ResidentAudio:
    def __init__(self, clean: dict[str, np.ndarray], weights: dict[str, float] | None = None,
                 device: str | torch.device = "cpu"):
        self.ids = sorted(clean)
        lengths = np.array([len(clean[u]) for u in self.ids], dtype=np.int64)
        self.device = torch.device(device)
        self.audio = torch.from_numpy(_flat(clean, self.ids, int(lengths.sum()))).to(self.device)
        self.total = int(lengths.sum())
        self.offsets = torch.from_numpy(np.cumsum(lengths) - lengths).to(self.device)
        self.lengths = torch.from_numpy(lengths).to(self.device)
        w = lengths.astype(np.float64) if weights is None else np.array([weights[u] for u in self.ids], np.float64)
        cdf = np.cumsum(w) / w.sum()
        cdf[-1] = 1.0
        self.cdf = torch.from_numpy(cdf).to(self.device)
        self.probabilities = w / w.sum()

    @property
    def nbytes(self) -> int:
        return self.audio.numel() * self.audio.element_size()

    @property
    def dtype(self) -> torch.dtype:
        return self.audio.dtype

    def choose(self, u: torch.Tensor, segment: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(utterance index, crop start), int64 ``(batch,)``, from uniform numbers `u` ``(batch, 2)`` float64."""
        utt = torch.searchsorted(self.cdf, u[:, 0].contiguous(), right=True).clamp_(max=len(self.ids) - 1)
        starts = (self.lengths[utt] - segment + 1).clamp_(min=1)
        start = torch.minimum((u[:, 1] * starts).long(), starts - 1)
        return utt, start

    def segments(self, utt: torch.Tensor, start: torch.Tensor, segment: int) -> torch.Tensor:
        """float32 ``(batch, segment)``: samples ``start .. start + segment`` of each utterance, zero past its end."""
        pos = start[:, None] + torch.arange(segment, device=self.device)[None, :]
        inside = pos < self.lengths[utt][:, None]
        x = self.audio[(self.offsets[utt][:, None] + pos).clamp_(max=self.total - 1)].to(torch.float32)
        if self.audio.dtype == torch.int16:
            x = x.div_(PCM16_SCALE)
        return x.masked_fill_(~inside, 0.0)
