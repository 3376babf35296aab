"""Signal helpers for models: an STFT pair valid for any input length, and padding to whole encoder frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class STFT(torch.nn.Module):
    """Hann-window STFT / iSTFT pair on ``(batch, time)`` waveforms."""

    def __init__(self, n_fft: int = 512, hop_length: int = 128):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, self.n_fft - x.shape[-1])) if x.shape[-1] < self.n_fft else x

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stft(self.padded(x), self.n_fft, self.hop_length, window=self.window.to(x.dtype),
                          return_complex=True)

    def istft(self, X: torch.Tensor, length: int) -> torch.Tensor:
        n = max(length, self.n_fft)
        y = torch.istft(X, self.n_fft, self.hop_length, window=self.window.to(X.real.dtype), length=n)
        return y[..., :length]


def frames_valid_length(length: int, kernel_size: int, stride: int) -> int:
    """The smallest length >= `length` (and >= `kernel_size`) that whole encoder frames cover."""
    if length <= kernel_size:
        return kernel_size
    return kernel_size + -(-(length - kernel_size) // stride) * stride


def pad_to_frames(x: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """Right-pad ``(..., time)`` with zeros to `frames_valid_length`."""
    pad = frames_valid_length(x.shape[-1], kernel_size, stride) - x.shape[-1]
    return F.pad(x, (0, pad)) if pad else x


class FramedWaveformNet(torch.nn.Module):
    """Base of ``(batch, time)`` waveform models with a strided frame encoder (the subclass sets ``kernel_size``
    and ``stride``, and crops its output back to the input length)."""

    kernel_size: int
    stride: int

    def valid_length(self, length: int) -> int:
        return frames_valid_length(length, self.kernel_size, self.stride)

    def framed_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"expected a (batch, time) tensor, got shape {tuple(x.shape)}")
        return pad_to_frames(x, self.kernel_size, self.stride)
