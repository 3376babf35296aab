"""Tests of the library-backed neural adapters: `convtasnet` (Asteroid) and `sepformer` (SpeechBrain).

Each adapter is exercised with its ``quick`` preset (small, fast on a CPU): exact (batch, time) shape for
any length, finite output on silence, gradients reaching every parameter, eval-mode determinism. The
parameter counts of the default (paper / recipe) and quick configs are pinned, so any change of the
architecture, of the wrapper or of the library's modules is caught.
"""

from __future__ import annotations

import sys

import pytest
import torch

from bench import REPO_ROOT
from bench.train.options import DEFAULTS as TRAINER_DEFAULTS

if str(REPO_ROOT) not in sys.path:   # baselines/ is not an installed package (see bench.adapters.base._import)
    sys.path.insert(0, str(REPO_ROOT))

#: library each adapter needs (the ``models`` extra), its module, class, and pinned parameter counts
ADAPTERS = {
    "convtasnet": dict(library="asteroid", module="baselines.convtasnet", cls="ConvTasNetAdapter",
                       default_params=4_984_497, quick_params=62_705),
    "sepformer": dict(library="speechbrain", module="baselines.sepformer", cls="SepFormerAdapter",
                      default_params=25_613_569, quick_params=125_377),
}
TRAIN_KEYS = set(TRAINER_DEFAULTS)  # the trainer's options
LOSSES = {"l1", "mrstft", "mrstft_sc", "mrstft_mag", "si_sdr"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a small shared machine, OpenMP barriers of a 2-thread run stall when
    the other core is busy (a 2-thread step measured 2-4x slower than a 1-thread one there)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def get_adapter(name: str):
    spec = ADAPTERS[name]
    pytest.importorskip(spec["library"])
    import importlib

    return getattr(importlib.import_module(spec["module"]), spec["cls"])()


_QUICK: dict = {}


def quick_model(name: str) -> torch.nn.Module:
    """The adapter's quick-preset model, built once per session with seed 0 (callers must not train it)."""
    if name not in _QUICK:
        adapter = get_adapter(name)
        torch.manual_seed(0)
        _QUICK[name] = adapter.build(**adapter.resolved_config("quick")).eval()
    return _QUICK[name]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def noise(*shape, seed=1):
    return 0.1 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def neg_si_sdr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    proj = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps) * ref
    return -10 * torch.log10(proj.pow(2).sum(-1) / ((est - proj).pow(2).sum(-1) + eps) + eps).mean()


NAMES = list(ADAPTERS)


# ------------------------------------------------------------------ the adapter's declarations

@pytest.mark.parametrize("name", NAMES)
def test_adapter_declarations(name):
    a = get_adapter(name)
    assert a.name == name and a.trainable and not a.oracle and not a.causal
    assert a.description and a.reference
    # convtasnet keeps the paper's SI-SDR-only objective selectable as paper-quick beside its quick preset
    assert set(a.presets) == ({"quick", "full", "paper-quick"} if name == "convtasnet" else {"quick", "full"})
    for preset in a.presets.values():
        assert set(preset) == {"model", "train"}
        assert set(preset["model"]) <= set(a.config)          # presets only override known arguments
        assert set(preset["train"]) <= TRAIN_KEYS
    assert set(a.train_config) <= TRAIN_KEYS
    assert a.train_config["loss"] == {"si_sdr": 1.0} and set(a.train_config["loss"]) <= LOSSES
    assert {"lr", "batch_size", "segment_seconds"} <= set(a.train_config)
    for preset in ("quick", "full"):     # step budgets: a rerun trains the same number of steps
        train = a.presets[preset]["train"]
        assert train["max_minutes"] is None and isinstance(train["max_steps"], int) and train["max_steps"] > 0
    assert a.presets["full"]["train"]["max_steps"] > a.presets["quick"]["train"]["max_steps"]
    assert a.resolved_config("full") == a.config


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts(name):
    a, spec = get_adapter(name), ADAPTERS[name]
    assert n_params(a.build()) == spec["default_params"]
    assert n_params(quick_model(name)) == spec["quick_params"]


def test_convtasnet_is_asteroids_model():
    pytest.importorskip("asteroid")
    from asteroid.models import ConvTasNet

    model = get_adapter("convtasnet").build()
    assert n_params(model) == n_params(ConvTasNet(n_src=1)) == 4_984_497   # the wrapper adds nothing
    assert model.net.sample_rate == 16000


# ------------------------------------------------------------------ shapes, silence, determinism

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("length", [1, 7, 16001])
def test_output_shape_equals_input_shape(name, batch, length):
    model = quick_model(name)
    with torch.no_grad():
        y = model(noise(batch, length))
    assert y.shape == (batch, length)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_valid_length_covers_whole_frames(name):
    model = quick_model(name)
    k, s = model.kernel_size, model.stride
    for length in [1, 2, k - 1, k, k + 1, 1000, 16001]:
        v = model.valid_length(length)
        assert v >= max(length, k) and (v - k) % s == 0 and v - max(length, k) < s
        assert model.valid_length(v) == v


@pytest.mark.parametrize("name", NAMES)
def test_silence_gives_finite_output(name):
    with torch.no_grad():
        y = quick_model(name)(torch.zeros(2, 8000))
    assert torch.isfinite(y).all()
    assert y.abs().max() < 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_eval_mode_is_deterministic(name):
    model = quick_model(name)
    assert not model.training
    x = noise(2, 12345, seed=3)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    # the same seed builds the same weights
    a = get_adapter(name)
    torch.manual_seed(0)
    again = a.build(**a.resolved_config("quick")).eval()
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


@pytest.mark.parametrize("name", NAMES)
def test_batch_items_are_independent(name):
    """No cross-talk between utterances of a batch (per-utterance norms only)."""
    model = quick_model(name)
    x = noise(3, 4000, seed=4)
    with torch.no_grad():
        together = model(x)
        alone = model(x[1:2])
    torch.testing.assert_close(together[1:2], alone, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ training

@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    a = get_adapter(name)
    torch.manual_seed(0)
    model = a.build(**a.resolved_config("quick")).train()
    clean = noise(2, 8000, seed=5)
    loss = neg_si_sdr(model(clean + noise(2, 8000, seed=6)), clean)
    assert torch.isfinite(loss)
    loss.backward()
    unused = {pname for pname, p in model.named_parameters() if p.grad is None}
    if name == "convtasnet":
        # Asteroid's TCN (like Luo's original) builds a residual 1x1 conv in every block, but with skip
        # connections the mask reads only the skip sum, so the last block's residual output is dropped:
        # bn_chan * (hid_chan + 1) parameters that never train (65,664 of the default 4,984,497)
        last = len(model.net.masker.TCN) - 1
        assert unused == {f"net.masker.TCN.{last}.res_conv.weight", f"net.masker.TCN.{last}.res_conv.bias"}
    else:
        assert unused == set()
    for pname, p in model.named_parameters():
        if pname not in unused:
            assert torch.isfinite(p.grad).all(), pname
            assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_a_few_steps_reduce_the_loss(name):
    a = get_adapter(name)
    torch.manual_seed(0)
    model = a.build(**a.resolved_config("quick")).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    clean = noise(2, 4000, seed=7)
    noisy = clean + noise(2, 4000, seed=8)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = neg_si_sdr(model(noisy), clean)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------ causal Conv-TasNet

def test_causal_convtasnet_looks_ahead_one_encoder_frame_only():
    a = get_adapter("convtasnet")
    cfg = a.resolved_config("quick", {"causal": True, "norm_type": "cLN"})
    torch.manual_seed(0)
    model = a.build(**cfg).eval()
    x = noise(1, 3000, seed=9)
    t0 = 2000
    x2 = x.clone()
    x2[:, t0:] += noise(1, 3000 - t0, seed=10)
    with torch.no_grad():
        y, y2 = model(x), model(x2)
    lookahead = cfg["kernel_size"] - 1
    torch.testing.assert_close(y[:, : t0 - lookahead], y2[:, : t0 - lookahead], rtol=0, atol=1e-6)
    assert not torch.allclose(y[:, t0:], y2[:, t0:])


def test_sepformer_repeated_blocks_start_different():
    """SpeechBrain deep-copies one intra and one inter block into every dual block; the adapter redraws
    the weights (as the recipe does), so only constant-initialised tensors (norms, zero biases) match."""
    a = get_adapter("sepformer")
    torch.manual_seed(0)
    model = a.build(**a.resolved_config("quick", {"num_layers": 2}))
    first, second = model.masknet.dual_mdl
    same = {n for (n, p), (_, q) in zip(first.named_parameters(), second.named_parameters()) if torch.equal(p, q)}
    assert same and all(("norm" in n) or n.endswith("bias") for n in same)
    assert not any(n.endswith("in_proj_weight") for n in same)
