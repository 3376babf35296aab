"""Demucs with a causal, bounded-context self-attention bottleneck in place of its LSTM.

`DemucsAttn` is `baselines.demucs.model.Demucs` (same encoder, decoder, resampling, normalization,
valid length and lookahead) whose 2-layer causal LSTM over the deepest frames is replaced by
`CausalAttention`: ``layers`` pre-norm transformer layers over the same ``(time, batch, dim)`` frames,
each

    x = x + Proj(SlidingWindowAttention(LayerNorm(x)))      (``heads`` heads, window ``W`` frames)
    x = x + Linear(GELU(Linear(LayerNorm(x))))               (hidden width ``ffn * dim``)

followed by a final LayerNorm. Frame ``t`` attends to frames ``t - W + 1 .. t`` only (causal, bounded
left context), so the model keeps the Demucs lookahead and a streamer needs a key/value cache of at
most ``W - 1`` frames per layer. Positions enter as a learned bias per head and distance
``d = t_query - t_key`` in ``0 .. W - 1`` (a relative scheme with exactly ``W`` values per head, so no
absolute position and any length works); it is initialized as ALiBi (Press, Smith & Lewis, ICLR 2022):
``-slope_h * d`` with slopes ``2 ** (-8 (h + 1) / heads)``, a recency prior of a different range per head.

A layer has ``4 d^2 + 2 ffn d^2`` weights (``8 d^2`` with ``ffn = 2``), an LSTM layer of width ``d``
``8 d^2`` as well, so 2 attention layers with ``ffn = 2`` have the parameters of the 2-layer LSTM
(up to biases, norms and the position table).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..demucs.model import Demucs

__all__ = ["DemucsAttn", "CausalAttention", "CausalAttentionLayer", "banded_attention"]


def banded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pos_bias: torch.Tensor) -> torch.Tensor:
    """Causal attention with a window of ``W = pos_bias.shape[-1]`` frames and a relative position bias.

    ``q`` is ``(B, H, Tq, dh)``, ``k`` and ``v`` ``(B, H, Tk, dh)`` with ``Tk >= Tq``: the queries are the
    last ``Tq`` of the ``Tk`` key positions (a streamer passes its cached keys first). Query ``p`` reads
    keys ``p - W + 1 .. p`` with scores ``q.k / sqrt(dh) + pos_bias[h, p - key]``. Computed in blocks of
    ``W`` queries against their ``2 W - 1`` possible keys (time and memory linear in the length).
    Returns ``(B, H, Tq, dh)``.
    """
    w = pos_bias.shape[-1]
    tq, tk = q.shape[-2], k.shape[-2]
    offset = tk - tq
    scale = 1.0 / math.sqrt(q.shape[-1])
    outs = []
    for s in range(0, tq, w):
        e = min(s + w, tq)
        p0, p1 = offset + s, offset + e                       # query positions [p0, p1)
        k0 = max(0, p0 - w + 1)
        d = (torch.arange(p0, p1, device=q.device)[:, None]
             - torch.arange(k0, p1, device=q.device)[None, :])   # (nq, nk) distances
        bias = pos_bias[:, d.clamp(0, w - 1)].masked_fill((d < 0) | (d >= w), float("-inf"))
        scores = torch.matmul(q[..., s:e, :], k[..., k0:p1, :].transpose(-1, -2)) * scale + bias.to(q.dtype)
        outs.append(torch.matmul(torch.softmax(scores, dim=-1), v[..., k0:p1, :]))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-2)


class CausalAttentionLayer(nn.Module):
    """A pre-norm transformer layer with sliding-window causal self-attention on ``(B, T, D)``."""

    def __init__(self, dim: int, heads: int = 4, window: int = 64, ffn: int = 2):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.heads, self.window = heads, window
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)])
        self.pos_bias = nn.Parameter(-slopes[:, None] * torch.arange(window, dtype=torch.float32))
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ffn * dim), nn.GELU(), nn.Linear(ffn * dim, dim))

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None):
        """``x (B, T, D)`` -> ``(y, cache)``. With a ``cache`` (keys and values ``(B, H, <= W - 1, dh)`` of
        the frames just before ``x``), those frames are attended to as well and the new cache (the last
        ``W - 1`` frames' keys and values, copied) is returned; without, the result is ``(y, None)``."""
        b, t, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = torch.cat((cache[0], k), dim=2), torch.cat((cache[1], v), dim=2)
        a = banded_attention(q, k, v, self.pos_bias)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, dim))
        x = x + self.ff(self.norm2(x))
        if cache is None:
            return x, None
        keep = min(self.window - 1, k.shape[2])
        return x, (k[:, :, k.shape[2] - keep:].clone(), v[:, :, v.shape[2] - keep:].clone())


class CausalAttention(nn.Module):
    """The bottleneck: `CausalAttentionLayer` x ``layers`` + LayerNorm, on ``(time, batch, dim)`` like the LSTM."""

    def __init__(self, dim: int, layers: int = 2, heads: int = 4, window: int = 64, ffn: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(CausalAttentionLayer(dim, heads, window, ffn) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.dim, self.heads, self.window = dim, heads, window

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (T, B, D) -> (T, B, D)
        return self.step(x, None)[0]

    def step(self, x: torch.Tensor, caches: list | None):
        """``(T, B, D)`` frames following those the ``caches`` (one per layer, see `CausalAttentionLayer`)
        hold -> (output frames, new caches); offline (``caches=None``) -> (output, None)."""
        h = x.transpose(0, 1)
        new = []
        for i, layer in enumerate(self.layers):
            h, c = layer(h, None if caches is None else caches[i])
            new.append(c)
        return self.norm(h).transpose(0, 1), (None if caches is None else new)

    def empty_caches(self, batch: int, dtype: torch.dtype, device) -> list:
        z = torch.zeros(batch, self.heads, 0, self.dim // self.heads, dtype=dtype, device=device)
        return [(z, z) for _ in self.layers]


class DemucsAttn(Demucs):
    """Causal `Demucs` with `CausalAttention` as its bottleneck (see the module docstring).

    Takes every `Demucs` argument (``causal`` must be True) plus ``attn_layers``, ``attn_heads``,
    ``attn_window`` (frames of the deepest level, each ``total_stride`` input samples) and ``attn_ffn``.
    The Demucs parts are built first, by `Demucs.__init__`, and so from the same random draws as a
    `Demucs` of the same config under the same seed (its LSTM is built too, then dropped); the
    attention layers are drawn after them. ``Demucs.forward`` calls ``self.lstm`` on the deepest frames;
    here that name reads the attention bottleneck (``self.attention``; state-dict keys ``attention.*``).
    """

    def __init__(self, *, attn_layers: int = 2, attn_heads: int = 4, attn_window: int = 64, attn_ffn: int = 2,
                 **demucs):
        if not demucs.get("causal", True):
            raise ValueError("DemucsAttn is causal only (causal=True)")
        super().__init__(**demucs)
        dim = self._modules.pop("lstm").lstm.input_size       # the deepest encoder's channels
        self.attn_layers, self.attn_heads, self.attn_window, self.attn_ffn = attn_layers, attn_heads, attn_window, attn_ffn
        self.attention = CausalAttention(dim, attn_layers, attn_heads, attn_window, attn_ffn)

    @property
    def lstm(self) -> CausalAttention:   # the bottleneck `Demucs.forward` calls
        return self.attention

    def context_frames(self) -> int:
        """Deepest-level frames before the current one that the bottleneck reaches: ``layers * (W - 1)``."""
        return self.attn_layers * (self.attn_window - 1)
