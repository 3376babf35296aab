"""Tests of online inference (bench/adapters/streaming.py, baselines/demucs/streamer.py): the streamed
output of a causal Demucs equals the
offline output, for any chunking, with a fixed delay equal to the model's lookahead.

Tolerances. The streamer computes every output sample with the same operations as the offline
model, but sums in a different order (convolutions and GEMMs over chunks instead of the whole
signal, the LSTM's input projection per chunk, overlap-add tails added across chunks, the bias added
after the tail). So the difference is float rounding only: in float64 it stays below 1e-12 (observed
~1e-16), in float32 below 1e-5 of the output's peak (observed ~3e-7 at the paper config).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from bench import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from baselines.demucs.adapter import Demucs as DemucsAdapter  # noqa: E402
from baselines.demucs.model import Demucs  # noqa: E402
from baselines.demucs.streamer import DemucsStreamer, running_norm_reference  # noqa: E402
from bench.adapters.base import Adapter, get_adapter  # noqa: E402
from bench.adapters.speed import streaming_speed  # noqa: E402
from bench.adapters.streaming import Streamer, running_std, stream  # noqa: E402

F64_TOL = 1e-12
F32_REL_TOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def small(dtype=torch.float64, **kw) -> Demucs:
    torch.manual_seed(0)
    cfg = dict(hidden=8, depth=3, normalize=False)
    cfg.update(kw)
    return Demucs(**cfg).to(dtype).eval()


def noise(*shape, seed=1, dtype=torch.float64, scale=0.1):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def offline(model, x):
    with torch.inference_mode():
        return model(x)


# ------------------------------------------------------------------ exact equivalence

CONFIGS = {
    "r4": dict(),                                   # resample 4, depth 3, 56-zero sinc
    "r2": dict(resample=2),
    "r1": dict(resample=1),
    "z13": dict(sinc_zeros=13),                     # odd sinc length: even-index reach of the upsamplers
    "paper-geometry": dict(hidden=2, depth=5, sinc_zeros=14),   # kernel 8 / stride 4 / depth 5 / resample 4
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("chunk", ["1", "97", "hop", "irregular"])
def test_stream_equals_offline_float64(name, chunk):
    model = small(**CONFIGS[name])
    n = 900 if chunk == "1" else 2500
    x = noise(2, n)                                  # a batch of two independent streams
    sizes = {"1": 1, "97": 97, "hop": model.total_stride, "irregular": [3, 500, 1, 64, 255, 1024]}[chunk]
    y = stream(DemucsStreamer(model), x, sizes)
    ref = offline(model, x)
    assert y.shape == x.shape
    assert (y - ref).abs().max().item() < F64_TOL


@pytest.mark.parametrize("chunk", [1, 97, 64])
def test_stream_equals_offline_float32(chunk):
    model = small(dtype=torch.float32)
    x = noise(1, 1200 if chunk == 1 else 3000, dtype=torch.float32)
    y = stream(DemucsStreamer(model), x, chunk)
    ref = offline(model, x)
    assert (y - ref).abs().max().item() <= F32_REL_TOL * ref.abs().max().item()


def test_fixed_delay_and_alignment():
    """After n input samples exactly max(0, n - delay) samples have come out; flush completes to n."""
    model = small()
    s = DemucsStreamer(model)
    assert s.delay == model.lookahead == 203 and s.hop == model.total_stride == 16
    x = noise(1000)
    n_in = n_out = 0
    outs = []
    for c in [1, 2, 150, 7, 64, 300, 97, 379]:
        y = s.push(x[n_in:n_in + c])
        n_in += c
        n_out += y.shape[-1]
        outs.append(y)
        assert n_out == max(0, n_in - s.delay)
    assert n_in == 1000
    tail = s.flush()
    assert tail.shape[-1] == s.delay
    y = torch.cat(outs + [tail])
    assert y.shape == x.shape
    assert (y - offline(model, x[None])[0]).abs().max().item() < F64_TOL


@pytest.mark.parametrize("name", ["r4", "r2", "r1", "z13", "paper-geometry"])
def test_each_output_leaves_as_soon_as_its_last_input_arrives(name):
    """Output t is computed exactly when input `last_input_index(t)` arrives: the delay (max over t of
    last_input_index(t) - t = model.lookahead) is tight, and the model's derivation matches the streamer."""
    model = small(**CONFIGS[name])
    s = DemucsStreamer(model)
    s.delay = 10 ** 9                               # keep everything pending, to watch when it is computed
    ready = []
    x = noise(1200)
    with torch.inference_mode():
        for i in range(x.shape[0]):
            s.push(x[i:i + 1])
            ready += [i] * (s.pending.shape[-1] - len(ready))
    assert len(ready) > 1200 - model.lookahead - 5
    assert all(r == model.last_input_index(t) for t, r in enumerate(ready))
    assert max(r - t for t, r in enumerate(ready)) == model.lookahead


def test_flush_resets_and_empty_stream():
    model = small()
    s = DemucsStreamer(model)
    assert s.flush().numel() == 0
    x = noise(1, 500)
    y1 = stream(s, x, 97)
    y2 = torch.cat([s.push(x[:, :250]), s.push(x[:, 250:]), s.flush()], dim=-1)   # reused after flush
    assert (y1 - y2).abs().max().item() < F64_TOL              # another chunking: rounding only
    s.push(noise(1, 10))
    with pytest.raises(ValueError, match="does not continue the stream"):
        s.push(noise(2, 10))
    short = stream(DemucsStreamer(model), noise(1, 5), 2)                        # shorter than the delay
    assert (short - offline(model, noise(1, 5))).abs().max().item() < F64_TOL


def test_rank_and_numpy_chunks():
    model = small()
    x = noise(700)
    y1 = stream(DemucsStreamer(model), x.numpy(), 50)           # (T,) numpy in -> (T,) tensor out
    assert y1.shape == (700,)
    y2 = stream(DemucsStreamer(model), x[None, None], 50)       # (B, C, T)
    assert y2.shape == (1, 1, 700)
    assert torch.allclose(y1, y2[0, 0], rtol=0, atol=F64_TOL)


def test_multichannel_model():
    model = small(chin=2, chout=2)
    x = noise(2, 2, 1500)
    y = stream(DemucsStreamer(model), x, 97)
    assert y.shape == (2, 2, 1500)
    assert (y - offline(model, x)).abs().max().item() < F64_TOL


def test_rejects_non_causal():
    with pytest.raises(ValueError, match="causal"):
        DemucsStreamer(small(causal=False))


# ------------------------------------------------------------------ causal normalization

def test_running_std_statistic():
    x = noise(3, 400)
    s = running_std(x)
    assert torch.all(s[:, 0] == 0)
    for t in (1, 2, 57, 399):
        assert torch.allclose(s[:, t], x[:, :t + 1].std(dim=-1), rtol=1e-10, atol=0)
    assert torch.allclose(s[:, -1], x.std(dim=-1), rtol=1e-12, atol=0)   # ends at the offline statistic


@pytest.mark.parametrize("chunk", [1, 97, 16])
def test_running_normalization_equals_its_offline_reference(chunk):
    """Streamed with the running std == the offline network on the same per-sample-normalized input."""
    model = small(normalize=True)
    s = DemucsStreamer(model)
    assert s.normalization == "running"
    x = noise(2, 900 if chunk == 1 else 2000)
    x[1] *= 30.0                                                   # a louder second stream
    y = stream(s, x, chunk)
    ref = running_norm_reference(model, x)
    assert model.normalize                                         # the reference restores the flag
    assert (y - ref).abs().max().item() < F64_TOL * max(1.0, ref.abs().max().item())


def test_fixed_std_normalization_equals_offline_model():
    """With the utterance's own std as a fixed statistic, the streamer reproduces offline `model(x)`."""
    model = small(normalize=True)
    x = noise(1, 2000)
    y = stream(DemucsStreamer(model, normalization=float(x.std())), x, 97)
    assert (y - offline(model, x)).abs().max().item() < F64_TOL


def test_running_normalization_converges_to_offline():
    """On stationary input the running std settles on the utterance's std, and the streamed output on
    the offline output: after the first 0.5 s they differ by less than 1% (relative RMS)."""
    model = small(normalize=True, depth=3, hidden=8)
    x = noise(1, 3 * 16000, seed=5, scale=0.05)
    y = stream(DemucsStreamer(model), x, 256)
    ref = offline(model, x)
    late = slice(8000, None)
    rel = ((y - ref)[:, late].pow(2).mean().sqrt() / ref[:, late].pow(2).mean().sqrt()).item()
    assert rel < 0.01
    early = slice(0, 160)                                          # the first 10 ms rest on few samples
    assert ((y - ref)[:, early].abs().max() > 1e-3 * ref.abs().max()).item()


# ------------------------------------------------------------------ the adapter: latency target, hooks

def test_adapter_config_meets_the_40ms_rule_with_the_paper_parameter_count():
    a = DemucsAdapter()
    model = a.build()
    assert sum(p.numel() for p in model.parameters()) == 18_867_937
    assert model.sinc_zeros == 14 and model.hidden == 48 and model.depth == 5 and model.resample == 4
    assert model.lookahead == 637
    assert a.latency_ms(model) == pytest.approx(39.8125) and a.latency_ms(model) <= 40.0
    s = a.streamer(model)
    assert isinstance(s, DemucsStreamer) and s.delay == 637 and s.hop == 256
    assert s.latency_with_hop_ms == pytest.approx(1000 * (637 + 255) / 16000)
    assert Demucs(hidden=4).lookahead == 763                       # the model's own default is unchanged


def test_quick_preset_stays_causal():
    a = DemucsAdapter()
    model = a.build(**a.resolved_config("quick"))
    assert model.causal and a.causal
    assert model.lookahead == 324 and model.sinc_zeros == 14       # 20.25 ms (408 = 25.5 ms with 56 zeros)
    s = a.streamer(model)
    x = noise(1, 3000, dtype=torch.float32)
    ref = offline(model, x)
    y = stream(s, x, 97)
    ref_running = running_norm_reference(model, x)
    assert (y - ref_running).abs().max().item() <= F32_REL_TOL * ref_running.abs().max().item()
    assert y.shape == ref.shape


def test_sinc_zeros_validation_and_causality_bound():
    with pytest.raises(ValueError):
        Demucs(sinc_zeros=0)
    # perturbing the input from p on leaves every output before p - lookahead untouched (paper geometry)
    model = small(hidden=2, depth=5, sinc_zeros=14)
    la = model.lookahead
    x = noise(1, 4000)
    p = 3000
    xp = x.clone()
    xp[:, p:] += 10.0 * noise(1, 4000 - p, seed=9)
    d = (offline(model, xp) - offline(model, x)).abs()[0] > 1e-12
    first = int(d.nonzero()[0])
    assert p - la <= first


def test_adapter_streamer_hook():
    assert Adapter().streamer(torch.nn.Identity()) is None
    ss = get_adapter("spectral-subtraction").adapter
    assert ss.streamer(ss.build()) is None
    assert streaming_speed(ss, ss.build()) == {}                   # not causal
    noisy = get_adapter("noisy").adapter
    assert streaming_speed(noisy, noisy.build()) == {}             # causal, no streamer
    a = DemucsAdapter()
    assert a.streamer(a.build(hidden=4, depth=3, causal=False)) is None


def test_streaming_speed_fields():
    a = DemucsAdapter()
    torch.manual_seed(0)
    model = a.build(hidden=4)                                      # paper geometry: hop 256
    out = streaming_speed(a, model, seconds=0.5)
    assert set(out) == {"rtf_stream", "stream_chunk_samples", "latency_ms"}
    assert out["latency_ms"] == pytest.approx(a.latency_ms(model))   # the streamer's delay is the model's lookahead
    assert out["rtf_stream"] > 0 and out["stream_chunk_samples"] == model.total_stride
    assert isinstance(out["stream_chunk_samples"], int)


# ------------------------------------------------------------------ the paper config

def test_paper_config_stream_equals_offline():
    """H=48, depth 5, resample 4, the adapter's 14-zero sinc filters; ~1 s of audio, float32."""
    a = DemucsAdapter()
    torch.manual_seed(0)
    model = a.build(normalize=False).eval()
    x = noise(1, 16000, dtype=torch.float32)
    ref = offline(model, x)
    peak = ref.abs().max().item()
    for chunk in (256, 97):
        y = stream(a.streamer(model), x, chunk)
        assert y.shape == x.shape
        assert (y - ref).abs().max().item() <= F32_REL_TOL * peak


def test_streamer_base_class_interface():
    class Delay(Streamer):
        delay, hop = 3, 4

        def __init__(self):
            super().__init__()
            self.buf = []

        def _push(self, x):
            self.buf.append(x)
            allx = torch.cat(self.buf, -1)
            self.buf = [allx]
            self.sent = getattr(self, "sent", 0)
            want = max(0, allx.shape[-1] - self.delay) - self.sent
            y = allx[..., self.sent:self.sent + want]
            self.sent += want
            return y

        def _flush(self):
            y = self.buf[0][..., self.sent:] if self.buf else torch.zeros(1, 1, 0)
            self.buf, self.sent = [], 0
            return y

    x = np.arange(10, dtype=np.float32)
    y = stream(Delay(), x, 3)
    assert torch.equal(y, torch.from_numpy(x))
    assert Delay().latency_ms == pytest.approx(3 / 16)
