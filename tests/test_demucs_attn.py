"""Tests of `demucs-attn` (baselines/demucs_attn): the causal sliding-window attention bottleneck, its twin
relation to `demucs`, and its exact streamer (same tolerances as tests/test_streaming.py)."""

from __future__ import annotations

import math
import random
import sys

import pytest
import torch

from bench import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from baselines.demucs.adapter import Demucs as DemucsAdapter  # noqa: E402
from baselines.demucs.model import Demucs  # noqa: E402
from baselines.demucs.streamer import running_norm_reference  # noqa: E402
from baselines.demucs_attn.adapter import DemucsAttn as DemucsAttnAdapter  # noqa: E402
from baselines.demucs_attn.model import CausalAttention, DemucsAttn, banded_attention  # noqa: E402
from baselines.demucs_attn.streamer import DemucsAttnStreamer  # noqa: E402
from bench.adapters.base import get_adapter  # noqa: E402
from bench.adapters.streaming import stream  # noqa: E402

# the streaming tolerances and the one-thread fixture of demucs' own streamer tests: the twin is held to the same
from test_streaming import F32_REL_TOL, F64_TOL, one_thread  # noqa: E402, F401


def small(dtype=torch.float64, **kw) -> DemucsAttn:
    """depth 3, stride 4, resample 4: one deepest frame per 16 input samples; a 5-frame window so that
    a few hundred ms of input cross many windows and attention blocks."""
    torch.manual_seed(0)
    cfg = dict(hidden=8, depth=3, normalize=False, attn_window=5, attn_heads=2)
    cfg.update(kw)
    return DemucsAttn(**cfg).to(dtype).eval()


def noise(*shape, seed=1, dtype=torch.float64, scale=0.1):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def offline(model, x):
    with torch.inference_mode():
        return model(x)


# ------------------------------------------------------------------ the attention

def naive_attention(q, k, v, pos_bias):
    """Full (T x T) masked attention, one query at a time: the definition `banded_attention` computes."""
    w, t = pos_bias.shape[-1], q.shape[-2]
    out = torch.zeros_like(q)
    for p in range(t):
        keys = range(max(0, p - w + 1), p + 1)
        s = torch.stack([(q[..., p, :] * k[..., j, :]).sum(-1) / math.sqrt(q.shape[-1]) + pos_bias[:, p - j]
                         for j in keys], dim=-1)
        out[..., p, :] = (torch.softmax(s, dim=-1)[..., None] * v[..., list(keys), :]).sum(-2)
    return out


@pytest.mark.parametrize("t", [1, 4, 7, 23])
def test_banded_attention_is_windowed_causal_attention(t):
    g = torch.Generator().manual_seed(t)
    q, k, v = (torch.randn(2, 3, t, 4, generator=g, dtype=torch.float64) for _ in range(3))
    bias = torch.randn(3, 5, generator=g, dtype=torch.float64)
    assert torch.allclose(banded_attention(q, k, v, bias), naive_attention(q, k, v, bias), rtol=0, atol=1e-12)
    # the last queries of a longer key sequence (a streamer's cache + chunk) give the same rows
    tail = max(1, t // 2)
    assert torch.allclose(banded_attention(q[..., -tail:, :], k, v, bias),
                          naive_attention(q, k, v, bias)[..., -tail:, :], rtol=0, atol=1e-12)


def test_bottleneck_is_causal_with_bounded_context():
    """Frame t of the bottleneck's output depends on frames t - layers (W - 1) .. t only."""
    torch.manual_seed(0)
    att = CausalAttention(8, layers=2, heads=2, window=4).double().eval()
    x = torch.randn(40, 1, 8, dtype=torch.float64)
    y = att(x)
    reach = 2 * (4 - 1)
    for p in (0, 10, 25):
        xp = x.clone()
        xp[p] += torch.randn(1, 8, dtype=torch.float64)      # (a constant would vanish in the LayerNorms)
        changed = ((att(xp) - y).abs().amax(dim=(1, 2)) > 1e-12).nonzero().flatten().tolist()
        assert changed == list(range(p, min(40, p + reach + 1)))


def test_position_bias_init_and_parameter_count():
    model = DemucsAttn(hidden=8, depth=3, attn_window=6, attn_heads=4)
    b = model.attention.layers[0].pos_bias
    assert b.shape == (4, 6) and torch.allclose(b[:, 1], -torch.tensor([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8]))
    assert model.context_frames() == 2 * 5
    with pytest.raises(ValueError, match="causal"):
        DemucsAttn(hidden=8, depth=3, causal=False)


# ------------------------------------------------------------------ the twin of `demucs`

def test_twin_presets_and_shared_initial_weights():
    a, d = DemucsAttnAdapter(), DemucsAdapter()
    assert get_adapter("demucs-attn").adapter.name == "demucs-attn"
    assert a.train_config == d.train_config
    for preset in ("quick", "full"):
        assert a.presets[preset] == d.presets[preset]            # same model overrides, same training
    assert {k: v for k, v in a.config.items() if not k.startswith("attn_")} == d.config
    torch.manual_seed(0)                                          # as the trainer does before `build`
    m = a.build(**a.resolved_config("quick"))
    torch.manual_seed(0)
    md = d.build(**d.resolved_config("quick"))
    sd, sdd = m.state_dict(), md.state_dict()
    shared = [k for k in sdd if not k.startswith("lstm.")]
    assert shared and all(torch.equal(sd[k], sdd[k]) for k in shared)
    assert {k for k in sd if k not in sdd} == {k for k in sd if k.startswith("attention.")}
    n, nd = (sum(p.numel() for p in x.parameters()) for x in (m, md))
    assert n == 1_180_209 and nd == 1_178_161                     # the bottleneck: about the LSTM's parameters
    assert m.lookahead == md.lookahead == 324 and a.latency_ms(m) == d.latency_ms(md)


# ------------------------------------------------------------------ streaming

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stream_equals_offline_for_random_chunks_float64(seed):
    model = small()
    rng = random.Random(seed)
    x = noise(2, 2000, seed=seed)                                 # 125 deepest frames: 25 windows
    sizes = [rng.choice([1, 2, 7, 16, 33, 97, 300]) for _ in range(60)]
    s = DemucsAttnStreamer(model)
    assert s.delay == model.lookahead and s.hop == model.total_stride
    y = stream(s, x, sizes)
    assert y.shape == x.shape
    assert (y - offline(model, x)).abs().max().item() < F64_TOL


def test_stream_equals_offline_float32_one_sample_chunks():
    model = small(dtype=torch.float32)
    x = noise(1, 1200, dtype=torch.float32)
    ref = offline(model, x)
    y = stream(DemucsAttnStreamer(model), x, 1)
    assert (y - ref).abs().max().item() <= F32_REL_TOL * ref.abs().max().item()


def test_kv_cache_stays_bounded():
    model = small(attn_window=5)
    s = DemucsAttnStreamer(model)
    x = noise(1, 8000)
    sizes = []
    for i in range(0, 8000, 160):
        s.push(x[:, i:i + 160])
        sizes.append(s.lstm.cached_frames())
    assert all(len(c) == 2 and max(c) <= 4 for c in sizes)
    assert sizes[-1] == [4, 4]                                    # full after the first window
    s.flush()
    assert s.lstm.caches is None                                  # flush resets the stream


def test_causality_and_the_demucs_latency():
    """Perturbing the input from p on leaves every output before p - lookahead untouched, and the
    streamer emits each output as soon as its last input arrives: the same delay as `demucs`."""
    model = small()
    base = Demucs(hidden=8, depth=3, normalize=False)
    assert model.lookahead == base.lookahead
    la = model.lookahead
    x = noise(1, 3000)
    p = 2000
    xp = x.clone()
    xp[:, p:] += 10.0 * noise(1, 1000, seed=9)
    d = (offline(model, xp) - offline(model, x)).abs()[0] > 1e-12
    assert p - la <= int(d.nonzero()[0]) < p                     # and the change does reach back before p
    s = DemucsAttnStreamer(model)
    s.delay = 10 ** 9
    ready = []
    with torch.inference_mode():
        for i in range(1200):
            s.push(x[:, i:i + 1])
            ready += [i] * (s.pending.shape[-1] - len(ready))
    assert all(r == model.last_input_index(t) for t, r in enumerate(ready))


def test_quick_preset_streams_with_running_normalization():
    a = DemucsAttnAdapter()
    torch.manual_seed(0)
    model = a.build(**a.resolved_config("quick")).eval()
    s = a.streamer(model)
    assert isinstance(s, DemucsAttnStreamer) and s.delay == 324 and s.normalization == "running"
    x = noise(1, 6000, dtype=torch.float32)
    y = stream(s, x, 97)
    with torch.inference_mode():
        ref = running_norm_reference(model, x)
    assert (y - ref).abs().max().item() <= F32_REL_TOL * ref.abs().max().item()
