"""`noisy`: the identity. Scores the noisy input itself: the floor every model must beat."""

from __future__ import annotations

import torch

from bench.adapters import Adapter


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Noisy(Adapter):
    name = "noisy"
    description = "identity: the unprocessed noisy input (the floor to beat)"
    reference = "-"
    causal = True

    def build(self) -> torch.nn.Module:
        return Identity()

    def latency_ms(self, model) -> float:
        return 0.0
