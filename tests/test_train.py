"""The shared trainer and the losses: real training steps on tiny real-format data.

- losses against hand-computed values;
- a one-batch overfit test: the loss falls;
- `--resume` reproduces the weights of an uninterrupted run exactly;
- checkpoints load with torch.load(weights_only=True);
- budgets: max_steps is honoured and recorded; a missing budget is a clear error.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch

from bench import REPO_ROOT
from bench.adapters.base import Adapter, Found
from bench.core.errors import BenchError
from bench.train.losses import CompositeLoss, MultiResolutionSTFTLoss, l1_loss, neg_si_sdr, neg_snr
from bench.run.pipeline import RunOptions, run_config
from bench.train.runconfig import RunConfig
from bench.train.trainer import DeviceBatches, SegmentBatches, load_checkpoint, train

from conftest import make_tiny_prepared

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


# ---------------------------------------------------------------------------------------------
# losses
def test_l1_hand_computed():
    est = torch.tensor([[0.0, 1.0, -1.0, 2.0]])
    ref = torch.tensor([[0.5, 1.0, 1.0, 0.0]])
    assert float(l1_loss(est, ref)) == pytest.approx((0.5 + 0 + 2 + 2) / 4)


def test_neg_si_sdr_hand_computed():
    ref = torch.tensor([[1.0, -1.0, 1.0, -1.0]])           # zero mean
    noise = torch.tensor([[1.0, 1.0, -1.0, -1.0]])         # zero mean, orthogonal to ref
    est = 2.0 * ref + 0.5 * noise                           # target = 2 ref (energy 16), error = 0.5 noise (energy 1)
    assert float(neg_si_sdr(est, ref)) == pytest.approx(-10 * math.log10(16 / 1), abs=1e-4)
    # scale invariance
    assert float(neg_si_sdr(3 * est, ref)) == pytest.approx(float(neg_si_sdr(est, ref)), abs=1e-4)


def test_neg_snr_hand_computed_and_level_and_sign_aware():
    ref = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    noise = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    est = ref + 0.5 * noise                                 # error energy 1, reference energy 4
    assert float(neg_snr(est, ref)) == pytest.approx(-10 * math.log10(4 / 1), abs=1e-4)
    assert float(neg_snr(-ref, ref)) == pytest.approx(10 * math.log10(4), abs=1e-4)        # inverted: -6 dB SNR
    assert float(neg_snr(0.05 * ref, ref)) == pytest.approx(-10 * math.log10(1 / 0.95 ** 2), abs=1e-4)
    # SI-SDR cannot tell these apart; SNR can
    for bad in (-est, 0.05 * est):
        assert float(neg_si_sdr(bad, ref)) == pytest.approx(float(neg_si_sdr(est, ref)), abs=1e-3)
        assert float(neg_snr(bad, ref)) > float(neg_snr(est, ref)) + 5
    total, parts = CompositeLoss({"si_sdr": 1.0, "snr": 1.0})(est, ref)
    assert set(parts) == {"si_sdr", "snr"} and float(total) == pytest.approx(float(sum(parts.values())), rel=1e-6)


def test_mrstft_zero_for_identity_and_positive_otherwise():
    torch.manual_seed(0)
    x = torch.randn(2, 8000)
    loss = MultiResolutionSTFTLoss()
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(0.5 * x, x)) > 0.1
    # log-magnitude term of a pure gain g is |log g| per bin; spectral convergence is |1-g|
    g = 0.5
    expected = (abs(1 - g) + abs(math.log(g)))  # per resolution, then averaged
    assert float(loss(g * x, x)) == pytest.approx(expected, rel=0.02)


def test_composite_weights_and_errors():
    torch.manual_seed(0)
    ref, est = torch.randn(1, 4000), torch.randn(1, 4000)
    total, parts = CompositeLoss({"l1": 2.0, "si_sdr": 0.5})(est, ref)
    assert float(total) == pytest.approx(2.0 * float(parts["l1"]) + 0.5 * float(parts["si_sdr"]), rel=1e-6)
    with pytest.raises(ValueError):
        CompositeLoss({"l2": 1.0})


# ---------------------------------------------------------------------------------------------
# a tiny trainable adapter and a tiny prepared track
class TinyConv(torch.nn.Module):
    def __init__(self, hidden=8, dropout=0.1):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv1d(1, hidden, 9, padding=4), torch.nn.Tanh(),
                                       torch.nn.Dropout(dropout), torch.nn.Conv1d(hidden, 1, 9, padding=4))

    def forward(self, x):
        return x + self.net(x[:, None])[:, 0]


class TinyAdapter(Adapter):
    name = "tiny-conv"
    description = "test"
    trainable = True
    config = {"hidden": 8, "dropout": 0.1}
    train_config = {"batch_size": 2, "segment_seconds": 0.25, "lr": 1e-3, "num_workers": 0,
                    "checkpoint_every": 2, "valid_every": 3}

    def build(self, hidden=8, dropout=0.1):
        return TinyConv(hidden, dropout)


@pytest.fixture(scope="module")
def tiny_prepared(tmp_path_factory):
    return make_tiny_prepared(tmp_path_factory.mktemp("train"), "tiny-train", duration=0.6)


def _found():
    return Found(adapter=TinyAdapter(), kind="submission", path=REPO_ROOT / "tests" / "test_train.py")


def _fresh(preset=None, **train_overrides) -> RunConfig:
    return RunConfig.resolve(TinyAdapter(), preset, train_overrides=train_overrides, train=True)


def _resumed(pt, runs_dir, run_id, **train_overrides) -> RunConfig:
    """The configuration `bench run --resume` trains with (bench.run.pipeline.run_config)."""
    opts = RunOptions(resume=True, run_id=run_id, runs_dir=runs_dir, train_overrides=train_overrides)
    return run_config(_found(), pt, opts, run_id)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_batches_depend_only_on_seed_and_step(tiny_prepared):
    clean = tiny_prepared.load_split("train")
    a = SegmentBatches(clean, tiny_prepared.protocol, 2, 4000, seed=1, start_step=0)
    b = SegmentBatches(clean, tiny_prepared.protocol, 2, 4000, seed=1, start_step=5)
    for step in (0, 3, 7):
        na, ca = a.batch(step)
        nb, cb = b.batch(step)
        assert torch.equal(na, nb) and torch.equal(ca, cb)
    n0, _ = a.batch(0)
    n1, _ = a.batch(1)
    assert not torch.equal(n0, n1)           # fresh noise every step
    assert n0.shape == (2, 4000)


@pytest.mark.parametrize("noise, batches", [("torch", DeviceBatches), ("numpy", SegmentBatches)])
def test_resume_reproduces_uninterrupted_run(tiny_prepared, tmp_path, monkeypatch, noise, batches):
    """Bit for bit on CPU, for both data paths (the model has dropout: the torch RNG is restored too)."""
    train(_found(), tiny_prepared, _fresh(max_steps=6, noise=noise), run_id="full", runs_dir=tmp_path)

    # the same run, interrupted (Ctrl-C) while fetching the batch of step 5; last.pt holds step 4
    real_batch = batches.batch

    def interrupting(self, step):
        if step == 4:
            raise KeyboardInterrupt
        return real_batch(self, step)

    monkeypatch.setattr(batches, "batch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        train(_found(), tiny_prepared, _fresh(max_steps=6, noise=noise), run_id="split", runs_dir=tmp_path)
    monkeypatch.setattr(batches, "batch", real_batch)
    rdir = tmp_path / "tiny-train" / "tiny-conv"
    assert load_checkpoint(rdir / "split" / "last.pt")["step"] == 4
    _, budget, _ = train(_found(), tiny_prepared, _resumed(tiny_prepared, tmp_path, "split", max_steps=6),
                         run_id="split", runs_dir=tmp_path, resume=True)
    last_full = load_checkpoint(rdir / "full" / "last.pt")
    last_split = load_checkpoint(rdir / "split" / "last.pt")
    assert last_full["step"] == last_split["step"] == 6
    for k in last_full["model"]:
        assert torch.equal(last_full["model"][k], last_split["model"][k]), k
    for k, v in last_full["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg"], last_split["optimizer"]["state"][k]["exp_avg"])
    assert torch.equal(last_full["torch_rng"], last_split["torch_rng"])
    assert budget["steps"] == 6 and budget["trained"] is True


def test_checkpoint_is_weights_only_and_budget_recorded(tiny_prepared, tmp_path):
    model, budget, cfg = train(_found(), tiny_prepared, _fresh(max_steps=4), run_id="r", runs_dir=tmp_path)
    rdir = tmp_path / "tiny-train" / "tiny-conv" / "r"
    for name in ("last.pt", "best.pt"):
        ck = torch.load(rdir / name, map_location="cpu", weights_only=True)
        assert ck["adapter"] == "tiny-conv" and "model" in ck
    assert (rdir / "log.csv").read_text().startswith("step,epoch,train_loss,valid_loss")
    assert budget["steps"] == 4 and budget["max_steps"] == 4 and budget["checkpoint_sha256"]
    with pytest.raises(BenchError, match="already holds a training run"):
        train(_found(), tiny_prepared, _fresh(max_steps=4), run_id="r", runs_dir=tmp_path)


def test_missing_budget_is_a_clear_error(tiny_prepared, tmp_path):
    with pytest.raises(BenchError, match="no training budget"):
        train(_found(), tiny_prepared, _fresh(), run_id="x", runs_dir=tmp_path)


def test_one_batch_overfit_loss_falls(tiny_prepared):
    torch.manual_seed(0)
    clean = tiny_prepared.load_split("train")
    noisy, ref = SegmentBatches(clean, tiny_prepared.protocol, 2, 4000, seed=0, start_step=0).batch(0)
    model = TinyConv(hidden=16, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = CompositeLoss({"l1": 1.0, "mrstft": 1.0})
    losses = []
    for _ in range(60):
        loss, _ = loss_fn(model(noisy), ref)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], (losses[0], losses[-1])


def test_resume_takes_config_and_preset_from_the_checkpoint(tiny_prepared, tmp_path):
    TinyAdapter.presets = {"quick": {"model": {"hidden": 4}, "train": {"max_steps": 2}}}
    try:
        train(_found(), tiny_prepared, _fresh("quick"), run_id="p", runs_dir=tmp_path)
        # resumed from the command line without --preset and with the default model config
        model, budget, trained = train(_found(), tiny_prepared, _resumed(tiny_prepared, tmp_path, "p", max_steps=3),
                                       run_id="p", resume=True, runs_dir=tmp_path)
    finally:
        TinyAdapter.presets = {}
    assert trained["preset"] == "quick" and budget["preset"] == "quick"
    assert trained["model_config"]["hidden"] == 4 and model.net[0].out_channels == 4
    assert budget["steps"] == 3


def test_train_only_then_score_the_best_checkpoint(tiny_prepared, tmp_path):
    """`bench run --train-only` (train on one machine) then `bench run --checkpoint .../best.pt` (score
    later): the scored run records the whole training run's budget, not the best step's."""
    from bench.run.pipeline import RunOptions, run
    from bench.scoring.results import load_run

    opts = RunOptions(train_overrides={"max_steps": 7}, run_id="t", runs_dir=tmp_path / "runs",
                      results_dir=tmp_path / "results", leaderboard=False, jobs=1, train_only=True)
    rdir = run(_found(), tiny_prepared, opts)
    assert rdir == tmp_path / "runs" / "tiny-train" / "tiny-conv" / "t"
    assert (rdir / "best.pt").exists() and not (tmp_path / "results").exists()  # nothing scored
    best_step = load_checkpoint(rdir / "best.pt")["step"]
    opts = RunOptions(run_id="t", runs_dir=tmp_path / "runs", results_dir=tmp_path / "results", leaderboard=False,
                      jobs=1, checkpoint=rdir / "best.pt")
    r = load_run(run(_found(), tiny_prepared, opts))
    b = r.summary["budget"]
    assert b["steps"] == 7 and b["best_step"] == best_step and b["max_steps"] == 7 and b["trained"]
    with pytest.raises(BenchError, match="exclude each other"):
        run(_found(), tiny_prepared, RunOptions(train_only=True, checkpoint=rdir / "best.pt", run_id="u",
                                                runs_dir=tmp_path / "runs"))


def test_unknown_preset_is_an_error_for_both_halves():
    """The preset is validated once for the model and the training configuration alike (train_config
    used to ignore an unknown preset silently)."""
    from bench.train.runconfig import train_config

    with pytest.raises(BenchError, match="no preset 'nope'"):
        RunConfig.resolve(TinyAdapter(), "nope")
    with pytest.raises(BenchError, match="no preset 'nope'"):
        train_config(TinyAdapter(), "nope", {"max_steps": 1})
    rc = _fresh(max_steps=2)
    assert rc.preset is None and rc.train_config["max_steps"] == 2 and rc.model_config == TinyAdapter.config
    assert rc.record("t", "p", "cpu") == {"model": "tiny-conv", "model_config": TinyAdapter.config, "preset": None,
                                          "track": "t", "protocol": "p", "device": "cpu", "train": rc.train_config}


def test_mrstft_terms_weighted_apart():
    """``mrstft_sc`` / ``mrstft_mag`` are the two terms of ``mrstft``: the reference Demucs recipe's
    0.5 / 0.5 is half the ``mrstft`` term, and for a pure gain g the terms are |1-g| and |log g|."""
    torch.manual_seed(0)
    x = torch.randn(2, 8000)
    recipe = CompositeLoss({"l1": 1.0, "mrstft_sc": 0.5, "mrstft_mag": 0.5})
    plain = CompositeLoss({"l1": 1.0, "mrstft": 1.0})
    total, parts = recipe(0.5 * x, x)
    total_plain, parts_plain = plain(0.5 * x, x)
    assert float(parts["mrstft_sc"]) == pytest.approx(0.5, rel=0.02)
    assert float(parts["mrstft_mag"]) == pytest.approx(math.log(2), rel=0.02)
    assert float(parts["mrstft_sc"] + parts["mrstft_mag"]) == pytest.approx(float(parts_plain["mrstft"]), rel=1e-6)
    assert float(total) == pytest.approx(float(parts["l1"]) + 0.5 * float(parts_plain["mrstft"]), rel=1e-6)


class Negate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return -self.gain * x


class NegatingAdapter(TinyAdapter):
    name = "negating"
    config = {}

    def build(self):
        return Negate()


def test_validation_flags_inverted_polarity(tiny_prepared, tmp_path, capsys):
    """A model whose output is its input negated: valid_scale (least-squares scale of the output onto
    the clean target) and valid_corr are negative, in the log and the budget record, with a warning."""
    found = Found(adapter=NegatingAdapter(), kind="submission", path=REPO_ROOT / "tests" / "test_train.py")
    rc = RunConfig.resolve(NegatingAdapter(), None, train_overrides={"max_steps": 1}, train=True)
    _, budget, _ = train(found, tiny_prepared, rc, run_id="neg", runs_dir=tmp_path)
    assert budget["valid_scale"] < -0.2   # about -0.45: the noisy input keeps about half the clean energy
    log = (tmp_path / "tiny-train" / "negating" / "neg" / "log.csv").read_text().splitlines()
    row = dict(zip(log[0].split(","), log[1].split(",")))
    assert float(row["valid_scale"]) < -0.2 and float(row["valid_corr"]) < -0.5
    assert "inverted polarity" in capsys.readouterr().err
    # and a model that passes its input through is not flagged
    _, ok, _ = train(_found(), tiny_prepared, _fresh(max_steps=1), run_id="pos", runs_dir=tmp_path)
    assert ok["valid_scale"] > 0.1


def test_a_checkpoint_of_the_earlier_trainer_resumes_on_the_numpy_path(tiny_prepared, tmp_path):
    """A last.pt whose configuration predates the options noise / shift / log_every (written by the trainer
    before the torch data path) resumes as it was trained: numpy noise, exactly."""
    train(_found(), tiny_prepared, _fresh(max_steps=4, noise="numpy", schedule="constant"), run_id="ref",
          runs_dir=tmp_path)
    train(_found(), tiny_prepared, _fresh(max_steps=2, noise="numpy", schedule="constant"), run_id="old",
          runs_dir=tmp_path)
    rdir = tmp_path / "tiny-train" / "tiny-conv"
    ck = load_checkpoint(rdir / "old" / "last.pt")
    for key in ("noise", "shift", "log_every"):
        del ck["train_config"][key]
    torch.save(ck, rdir / "old" / "last.pt")
    train(_found(), tiny_prepared, _resumed(tiny_prepared, tmp_path, "old", max_steps=4), run_id="old",
          runs_dir=tmp_path, resume=True)
    a, b = load_checkpoint(rdir / "ref" / "last.pt"), load_checkpoint(rdir / "old" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_tilt_reaches_the_trained_batches_and_numpy_refuses_it(tiny_prepared, tmp_path, monkeypatch):
    seen = {}
    real_init = DeviceBatches.__init__

    def recording(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        seen["tilt_db"] = self.tilt_db

    monkeypatch.setattr(DeviceBatches, "__init__", recording)
    train(_found(), tiny_prepared, _fresh(max_steps=2, tilt_db=3.0), run_id="tilted", runs_dir=tmp_path)
    assert seen["tilt_db"] == 3.0
    a = load_checkpoint(tmp_path / "tiny-train" / "tiny-conv" / "tilted" / "last.pt")
    train(_found(), tiny_prepared, _fresh(max_steps=2), run_id="plain", runs_dir=tmp_path)
    b = load_checkpoint(tmp_path / "tiny-train" / "tiny-conv" / "plain" / "last.pt")
    assert a["train_config"]["tilt_db"] == 3.0 and b["train_config"]["tilt_db"] == 0.0
    assert any(not torch.equal(a["model"][k], b["model"][k]) for k in a["model"])   # other batches, other steps
    with pytest.raises(BenchError, match="tilt_db augmentation is implemented on the torch path only"):
        train(_found(), tiny_prepared, _fresh(max_steps=2, tilt_db=3.0, noise="numpy"), run_id="np", runs_dir=tmp_path)
