"""Exact streaming inference of `baselines.demucs_attn.model.DemucsAttn`.

`DemucsAttnStreamer` is `baselines.demucs.streamer.DemucsStreamer` (the same resampler, encoder, decoder,
skip and normalization stages, the same ``delay = model.lookahead`` and ``hop = model.total_stride``) with
the LSTM stage replaced by `_AttentionStage`: each chunk of deepest-level frames goes through the model's
own attention layers together with a key/value cache of the previous ``attn_window - 1`` frames per layer
(nothing older can be attended to, so the cache is all the state, bounded whatever the stream's length).
Causal attention reads no future frame, so it adds no lookahead: the streamed output equals offline
``model(x)`` up to float rounding (tests/test_demucs_attn.py), with the tolerance of the `demucs` streamer.
"""

from __future__ import annotations

import torch

from ..demucs.streamer import DemucsStreamer

__all__ = ["DemucsAttnStreamer"]


class _AttentionStage:
    """The bottleneck one chunk of frames at a time: ``push((T, B, D)) -> (T, B, D)``, a bounded KV cache."""

    def __init__(self, bottleneck):
        self.bottleneck = bottleneck
        self.reset()

    def reset(self) -> None:
        self.caches = None

    def push(self, x: torch.Tensor) -> torch.Tensor:
        if self.caches is None:
            self.caches = self.bottleneck.empty_caches(x.shape[1], x.dtype, x.device)
        y, self.caches = self.bottleneck.step(x, self.caches)
        return y

    def cached_frames(self) -> list[int]:
        """Frames held per layer (at most ``window - 1``)."""
        return [0 if self.caches is None else int(k.shape[2]) for k, _ in (self.caches or [])]


class DemucsAttnStreamer(DemucsStreamer):
    """`DemucsStreamer` for a `DemucsAttn`: same delay, hop and normalization; attention with a KV cache."""

    def _bottleneck(self):
        return _AttentionStage(self.model.attention)
