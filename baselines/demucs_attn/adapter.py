"""`demucs-attn`: the causal Demucs of baselines/demucs with its 2-layer LSTM bottleneck replaced by 2 pre-norm
transformer layers of causal sliding-window self-attention (window 64 frames, learned relative position bias),
baselines/demucs_attn/model.py.

Twin of `demucs`: the same encoder/decoder config and the same training configs (loss, lr, schedule, batch,
segment, steps, seed) at every preset, read from the `demucs` adapter; only the bottleneck differs, with about
the LSTM's parameter count (2 layers of ``8 d^2`` weights each). Under the trainer's seed the Demucs parts start
from the same weights as `demucs`'s. `bench compare` of the two, trained to the same number of steps, measures
what attention in place of recurrence does. Same lookahead (latency) as `demucs`: attention is causal.
Streaming: `baselines.demucs_attn.streamer.DemucsAttnStreamer`, a key/value cache of ``attn_window - 1``
frames per layer. Model card: baselines/demucs_attn/README.md.
"""

from __future__ import annotations

import torch

from ..demucs.adapter import Demucs
from .model import DemucsAttn as DemucsAttnNet

#: the bottleneck (model options added to `demucs`'s config)
ATTENTION = {"attn_layers": 2, "attn_heads": 4, "attn_window": 64, "attn_ffn": 2}


def _twin(preset: str) -> dict:
    """The `demucs` preset `preset`, unchanged (the attention options keep their defaults)."""
    p = Demucs.presets[preset]
    return {"model": dict(p.get("model", {})), "train": dict(p.get("train", {}))}


class DemucsAttn(Demucs):
    name = "demucs-attn"
    description = "Demucs (causal) with causal sliding-window self-attention (2 layers, 64 frames) for its LSTM"
    reference = ("Defossez et al., Interspeech 2020 (Demucs); Vaswani et al., NeurIPS 2017 (attention); "
                 "Press et al., ALiBi, ICLR 2022 (position-bias init)")
    config = {**Demucs.config, **ATTENTION}
    train_config = dict(Demucs.train_config)
    presets = {"quick": _twin("quick"), "full": _twin("full")}

    def build(self, **config) -> torch.nn.Module:
        return DemucsAttnNet(**{**self.config, **config})

    def streamer(self, model):
        from .streamer import DemucsAttnStreamer

        return DemucsAttnStreamer(model) if getattr(model, "causal", False) else None
