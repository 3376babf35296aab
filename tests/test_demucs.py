"""Tests of the from-scratch Demucs (baselines/demucs/model.py)."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn.functional as F

from bench import REPO_ROOT

if str(REPO_ROOT) not in sys.path:   # baselines/ is not an installed package (see bench.adapters.base._import)
    sys.path.insert(0, str(REPO_ROOT))

from baselines.demucs.model import (SINC_ZEROS, Demucs, conv_transpose1d_gemm, downsample2,
                                    sinc_half_kernel, upsample2)

PAPER_PARAMS = 18_867_937   # causal Demucs H=48, depth 5, kernel 8, stride 4, resample 4 ("18.87 M")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a small shared machine, OpenMP barriers in the per-step LSTM kernels
    of a 2-thread run can stall for seconds when the other core is busy."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def small(**kw) -> Demucs:
    torch.manual_seed(0)
    cfg = dict(hidden=8, depth=3)
    cfg.update(kw)
    return Demucs(**cfg).eval()


def noise(*shape, seed=1, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------------ size and geometry

def test_parameter_count_of_the_paper_config():
    model = Demucs()   # the defaults are the paper's causal H=48 config
    assert n_params(model) == PAPER_PARAMS
    assert f"{n_params(model) / 1e6:.2f} M" == "18.87 M"
    # the causal bottleneck: 2 uni-directional LSTM layers of 768 units
    lstm = 2 * (4 * 768 * (768 + 768) + 2 * 4 * 768)
    assert n_params(model.lstm) == lstm
    # non-causal: 2 bidirectional layers (the second reads 2 * 768) + Linear(2 * 768, 768)
    bilstm = 2 * (4 * 768 * (768 + 768) + 2 * 4 * 768) + 2 * (4 * 768 * (1536 + 768) + 2 * 4 * 768)
    assert n_params(Demucs(causal=False)) == PAPER_PARAMS - lstm + bilstm + 1536 * 768 + 768 == 34_216_417


def test_paper_config_geometry():
    model = Demucs()
    assert model.total_stride == 256                   # 4**5 / 4 samples = 16 ms per LSTM frame
    assert model.valid_length(1) == 597                # one deepest frame: 2388 samples at 64 kHz
    assert model.lookahead == 763
    assert model.algorithmic_latency_ms() == pytest.approx(1000 * 763 / 16000)
    assert Demucs(causal=False).lookahead is None


@pytest.mark.parametrize("cfg", [dict(), dict(resample=2), dict(resample=1, kernel_size=5, stride=2),
                                 dict(depth=5, hidden=4)])
def test_valid_length_gives_whole_frames(cfg):
    model = small(**cfg)
    for length in [1, 2, 7, 100, 16001, 33333]:
        v = model.valid_length(length)
        assert v >= length
        assert model.valid_length(v) == v
        n = v * model.resample
        for _ in range(model.depth):          # every strided conv consumes its input exactly
            assert n >= model.kernel_size and (n - model.kernel_size) % model.stride == 0
            n = (n - model.kernel_size) // model.stride + 1


# ------------------------------------------------------------------ shapes

@pytest.mark.parametrize("length", [1, 7, 16001, 33333])
@pytest.mark.parametrize("batch", [1, 3])
def test_output_length_equals_input_length(length, batch):
    model = small()
    with torch.inference_mode():
        y = model(noise(batch, length))
        assert y.shape == (batch, length)
        assert torch.isfinite(y).all()
        y3 = model(noise(batch, 1, length))
        assert y3.shape == (batch, 1, length)


@pytest.mark.parametrize("cfg", [dict(resample=1), dict(resample=2), dict(depth=5, hidden=4),
                                 dict(causal=False), dict(glu=False), dict(chin=2, chout=2)])
def test_output_length_other_configs(cfg):
    model = small(**cfg)
    with torch.inference_mode():
        for length in (1, 7, 4001):
            if model.chin == 1:
                assert model(noise(2, length)).shape == (2, length)
            assert model(noise(2, model.chin, length)).shape == (2, model.chout, length)


def test_paper_config_runs():
    with torch.inference_mode():
        assert Demucs().eval()(noise(2, 8001)).shape == (2, 8001)


def test_bad_input_rank():
    with pytest.raises(ValueError):
        small()(noise(10))


def test_normalization_is_scale_equivariant():
    model = small()
    x = noise(2, 3000)
    with torch.inference_mode():
        y1, y2 = model(x), model(100.0 * x)
    assert torch.allclose(100.0 * y1, y2, rtol=1e-3, atol=1e-4)


def test_eval_mode_is_deterministic():
    model = small()
    x = noise(2, 5000)
    with torch.inference_mode():
        y1, y2 = model(x), model(x)
    assert torch.equal(y1, y2)
    assert torch.equal(small()(x).detach(), small()(x).detach())   # same seed, same model


def test_rescale_at_init():
    torch.manual_seed(0)
    plain = Demucs(hidden=8, depth=3, rescale=None)
    torch.manual_seed(0)
    scaled = Demucs(hidden=8, depth=3, rescale=0.1)
    w0, w1 = plain.encoder[0][0].weight, scaled.encoder[0][0].weight
    assert torch.allclose(w1, w0 / math.sqrt(w0.std().item() / 0.1))


# ------------------------------------------------------------------ causality

def first_changes(model, x, positions, delta=1e3, tol=1e-9):
    """Perturb ``x`` (1, T) from each position on (one batch item each); first changed output index."""
    xb = x.repeat(len(positions) + 1, 1)
    for i, p in enumerate(positions):
        xb[i + 1, p:] += delta * noise(xb.shape[1] - p, seed=p, dtype=x.dtype)
    with torch.inference_mode():
        y = model(xb)
    changed = (y[1:] - y[:1]).abs() > tol
    return [int(row.nonzero()[0]) if row.any() else None for row in changed]


@pytest.mark.parametrize("cfg", [dict(resample=1), dict(resample=2), dict(resample=4),
                                 dict(resample=4, depth=5, hidden=4)])
def test_causal_model_lookahead(cfg):
    """Output before ``t`` is unchanged when the input is perturbed after ``t + lookahead``.

    Lookaheads (input samples at 16 kHz, kernel 8, stride 4): depth 3 -> resample 1: 147,
    resample 2: 184, resample 4: 203; depth 5 / resample 4 (the paper geometry): 763 (47.7 ms).
    In float64 so that tiny contributions are seen.
    """
    model = small(normalize=False, **cfg).double()
    la, period = model.lookahead, model.stride ** model.depth
    expected = {(1, 3): 147, (2, 3): 184, (4, 3): 203, (4, 5): 763}[(model.resample, model.depth)]
    assert la == expected
    x = noise(1, la + 2 * period + 300, dtype=torch.float64)
    start = la + 100
    positions = list(range(start, start + period)) if period <= 64 else \
        [start + 37 * i for i in range(28)] + [start + period - 1]
    firsts = first_changes(model, x, positions)
    for p, f in zip(positions, firsts):
        assert f is not None, "a perturbation must change the output somewhere"
        assert f >= p - la                            # output[:p - la] is untouched
        assert model.last_input_index(f) >= p         # ... and so is anything the reach map excludes
    if model.resample == 1:
        # without the sinc resampler (whose outermost taps are ~1e-6) the bound is attained exactly
        assert max(p - f for p, f in zip(positions, firsts)) == la
        assert all(model.last_input_index(f - 1) < p for p, f in zip(positions, firsts))


def test_noncausal_model_depends_on_the_future():
    """The bidirectional LSTM carries the future back (its influence decays with distance)."""
    model = small(causal=False, normalize=False).double()
    framing = small(normalize=False).lookahead        # 203: what the same geometry sees when causal
    x = noise(1, 1200, dtype=torch.float64)
    f, = first_changes(model, x, [1000], tol=1e-12)
    assert f is not None and 1000 - f > framing + 100


def test_offline_normalization_is_not_causal():
    """With ``normalize=True`` the utterance std couples every output to the whole input."""
    model = small(normalize=True).double()
    x = noise(1, 4000, dtype=torch.float64)
    f, = first_changes(model, x, [3500])
    assert f == 0


# ------------------------------------------------------------------ resampling

def tones(n, rate, freqs=(220.0, 1000.0, 2500.0, 5300.0), dtype=torch.float64, shift=0.0):
    t = (torch.arange(n, dtype=dtype) + shift) / rate
    g = torch.Generator().manual_seed(3)
    phases = 2 * math.pi * torch.rand(len(freqs), generator=g, dtype=dtype)
    return sum(torch.sin(2 * math.pi * f * t + ph) for f, ph in zip(freqs, phases)) / len(freqs)


def test_sinc_kernel():
    k = sinc_half_kernel()
    assert k.shape == (2 * SINC_ZEROS,)
    assert torch.allclose(k, k.flip(0))
    assert k.sum().item() == pytest.approx(1.0, abs=1e-3)


def test_upsample2_interpolates_band_limited_signals():
    n, edge = 4000, 4 * SINC_ZEROS
    x = tones(n, 16000)
    y = upsample2(x[None, None])[0, 0]
    assert y.shape == (2 * n,)
    assert torch.equal(y[0::2], x)                      # original samples kept exactly
    half = tones(n, 16000, shift=0.5)                   # the true signal half-way between samples
    err = (y[1::2] - half)[edge:-edge].abs().max().item()
    assert err < 2e-3


def test_downsample2_of_upsample2_reconstructs():
    n, edge = 4000, 4 * SINC_ZEROS
    x = tones(n, 16000)[None].repeat(2, 1)
    y = downsample2(upsample2(x))
    assert y.shape == x.shape
    assert (y - x)[:, edge:-edge].abs().max().item() < 2e-3
    assert downsample2(noise(3, 7)).shape == (3, 4)


def test_downsample2_decimates_band_limited_signals():
    n, edge = 4000, 4 * SINC_ZEROS
    fast = tones(2 * n, 32000)
    slow = tones(n, 16000)
    assert (downsample2(fast) - slow)[edge:-edge].abs().max().item() < 2e-3


def test_resampler_reach():
    """upsample2: y[2i+1] reads up to x[i + Z]; downsample2: y[i] reads up to x[2i + 2Z - 1] (an odd
    sample; even samples only enter their own output, x[2i] -> y[i])."""
    z, n = SINC_ZEROS, 600
    x = noise(n, dtype=torch.float64)
    for p in (300, 301):
        xp = x.clone()
        xp[p] += 1.0
        d = (upsample2(xp) - upsample2(x)).abs() > 0
        assert int(d.nonzero()[0]) == 2 * (p - z) + 1
        d = (downsample2(xp) - downsample2(x)).abs() > 0
        assert int(d.nonzero()[0]) == (p // 2 if p % 2 == 0 else (p - 2 * z + 1) // 2)


# ------------------------------------------------------------------ the CPU transposed convolution

@pytest.mark.parametrize("cin,cout,k,s", [(6, 3, 8, 4), (5, 2, 7, 4), (4, 1, 3, 4), (3, 2, 5, 2), (2, 2, 4, 1)])
def test_conv_transpose1d_gemm_matches_torch(cin, cout, k, s):
    x = noise(2, cin, 13, dtype=torch.float64).requires_grad_()
    w = noise(cin, cout, k, seed=2, dtype=torch.float64).requires_grad_()
    b = noise(cout, seed=3, dtype=torch.float64).requires_grad_()
    ref = F.conv_transpose1d(x, w, b, stride=s)
    out = conv_transpose1d_gemm(x, w, b, s)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref)
    g = noise(*ref.shape, seed=4, dtype=torch.float64)
    grads_ref = torch.autograd.grad(ref, (x, w, b), g)
    grads = torch.autograd.grad(out, (x, w, b), g)
    for a, c in zip(grads, grads_ref):
        assert torch.allclose(a, c)


def test_fast_cpu_paths_match_plain_layers(monkeypatch):
    """`_PointwiseGLU` and `_ConvTranspose1d` compute what Conv1d + GLU and ConvTranspose1d do."""
    from baselines.demucs import model as mod

    model = small(normalize=True).double().train()
    x = noise(2, 3001, dtype=torch.float64)

    def run():
        model.zero_grad()
        y = model(x)
        y.pow(2).sum().backward()
        return y.detach(), [p.grad.clone() for p in model.parameters()]

    fast_y, fast_g = run()
    with torch.no_grad():
        assert torch.allclose(model(x), fast_y)          # the in-place no-grad path
    monkeypatch.setattr(mod._PointwiseGLU, "forward", lambda self, x: F.glu(torch.nn.Conv1d.forward(self, x), 1))
    monkeypatch.setattr(mod._ConvTranspose1d, "forward", torch.nn.ConvTranspose1d.forward)
    ref_y, ref_g = run()
    assert torch.allclose(fast_y, ref_y)
    for a, b in zip(fast_g, ref_g):
        assert torch.allclose(a, b)


def test_training_step_runs():
    model = small().train()
    x = noise(2, 3000)
    loss = F.l1_loss(model(x), x)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
