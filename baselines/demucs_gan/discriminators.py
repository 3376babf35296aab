"""HiFi-GAN-style waveform discriminators (Kong, Kim & Bae, "HiFi-GAN", NeurIPS 2020), written from the
paper's description, with a ``width`` multiplier on every channel count (1.0: the paper's sizes).

- `PeriodDiscriminator(p)`: the waveform folded into a 2-D ``(time / p, p)`` grid (reflect-padded to a
  multiple of ``p``), then 2-D convs with kernel ``(5, 1)`` (stride ``(3, 1)``, the last stride 1) over
  ``32, 128, 512, 1024, 1024`` channels and a ``(3, 1)`` conv to one score channel; weight norm, leaky
  ReLU 0.1. It sees the periodic structure at period ``p`` (each column is every p-th sample).
- `ScaleDiscriminator`: 1-D convs over ``128, 128, 256, 512, 1024, 1024, 1024`` channels (kernels 15,
  41 x 5, 5; strides 1, 2, 2, 4, 4, 1, 1; groups 1, 4, 16, 16, 16, 16, 1) and a kernel-3 conv to one
  score channel; leaky ReLU 0.1. Spectral norm on the raw-waveform one, weight norm on the others.
- `HiFiGANDiscriminator`: the multi-period discriminator (periods 2, 3, 5, 7, 11) and the multi-scale
  one (the waveform, then twice average-pooled by 2: kernel 4, stride 2, padding 2), together.

Each maps ``(batch, time)`` to a list of ``(score, features)``, one per sub-discriminator
(`bench.train.adversarial`): ``score`` ``(batch, positions)``, ``features`` every activation, the score
map included.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

SLOPE = 0.1
PERIOD_CHANNELS = (32, 128, 512, 1024, 1024)
SCALE_CHANNELS = (128, 128, 256, 512, 1024, 1024, 1024)
SCALE_KERNELS = (15, 41, 41, 41, 41, 41, 5)
SCALE_STRIDES = (1, 2, 2, 4, 4, 1, 1)
SCALE_GROUPS = (1, 4, 16, 16, 16, 16, 1)


def scaled(channels, width: float) -> list[int]:
    return [max(1, int(round(c * width))) for c in channels]


def _run_stack(convs, post, x: torch.Tensor):
    """(flattened score, every layer's activations) of a stack of convolutions with leaky ReLUs and a last
    convolution: the discriminator output and the features that feature matching compares."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), SLOPE)
        feats.append(x)
    x = post(x)
    feats.append(x)
    return x.flatten(1), feats


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, width: float = 1.0, kernel_size: int = 5, stride: int = 3):
        super().__init__()
        self.period = int(period)
        chans = scaled(PERIOD_CHANNELS, width)
        pad = ((kernel_size - 1) // 2, 0)
        self.convs = nn.ModuleList()
        c_in = 1
        for i, c in enumerate(chans):
            s = stride if i < len(chans) - 1 else 1
            self.convs.append(weight_norm(nn.Conv2d(c_in, c, (kernel_size, 1), (s, 1), padding=pad)))
            c_in = c
        self.post = weight_norm(nn.Conv2d(c_in, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor):
        b, t = x.shape
        n = (-t) % self.period
        x = F.pad(x[:, None], (0, n), mode="reflect" if n < t else "constant")
        x = x.view(b, 1, (t + n) // self.period, self.period)
        return _run_stack(self.convs, self.post, x)


class ScaleDiscriminator(nn.Module):
    def __init__(self, width: float = 1.0, spectral: bool = False):
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        self.convs = nn.ModuleList()
        c_in = 1
        for c, k, s, g in zip(scaled(SCALE_CHANNELS, width), SCALE_KERNELS, SCALE_STRIDES, SCALE_GROUPS):
            g = math.gcd(g, c_in, c)       # narrow models: groups that divide both channel counts
            self.convs.append(norm(nn.Conv1d(c_in, c, k, s, groups=g, padding=(k - 1) // 2)))
            c_in = c
        self.post = norm(nn.Conv1d(c_in, 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor):
        x = x[:, None]
        return _run_stack(self.convs, self.post, x)


class HiFiGANDiscriminator(nn.Module):
    """Multi-period (`periods`) and multi-scale (`scales`) discriminators; ``width`` scales the channels of
    both (``period_width`` / ``scale_width`` each one alone)."""

    def __init__(self, periods=(2, 3, 5, 7, 11), scales: int = 3, width: float = 1.0,
                 period_width: float | None = None, scale_width: float | None = None):
        super().__init__()
        pw = width if period_width is None else period_width
        sw = width if scale_width is None else scale_width
        self.periods = nn.ModuleList(PeriodDiscriminator(p, pw) for p in periods)
        self.scales = nn.ModuleList(ScaleDiscriminator(sw, spectral=(i == 0)) for i in range(scales))
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, x: torch.Tensor):
        out = [d(x) for d in self.periods]
        for i, d in enumerate(self.scales):
            if i:
                x = self.pool(x[:, None])[:, 0]
            out.append(d(x))
        return out
