"""The cases of issue 17 ("tried as a careful new user would"), each reproduced first, then fixed:

1. a resumed scoring with another model discards the partial rows (bench/scoring/runguard.py);
2. run ids, track and model names that would lead outside results/, runs/ or the repo are refused
   before anything is written (bench/core/names.py); tracks load by registered name only;
3. zero or negative budgets and every out-of-range training option are refused with the range;
4. user-caused OSErrors, unknown --set keys, bad checkpoints and devices give one line (see also
   tests/test_bad_args.py, which runs every subcommand with a table of bad arguments).

Cases 5-8 (locks, worker pools, enhance, prepare's headline) are in tests/test_hardening_processes.py.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import bench.data.tracks as tracks_mod
from bench import REPO_ROOT
from bench.adapters.base import Adapter, Found, discover
from bench.core.errors import AdapterError, BenchError, DataError
from bench.core.names import inside
from bench.run.pipeline import RunOptions, resolve_device, run
from bench.train.runconfig import RunConfig, train_config
from bench.adapters.speed import RTF_SECONDS
from bench.scoring.suite import Evaluation
from bench.train.options import DEFAULTS, TRAIN_RULES
from bench.train.trainer import load_checkpoint, load_checkpoint_model

from conftest import make_tiny_prepared, track_spec
from test_train import TinyAdapter

PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'tests'}", "COLUMNS": "300", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory):
    return make_tiny_prepared(tmp_path_factory.mktemp("hardening"), "tiny-hard", duration=0.6)


def _found(adapter=None) -> Found:
    return Found(adapter=adapter or TinyAdapter(), kind="submission", path=Path(__file__))


def _opts(tmp_path, **kw) -> RunOptions:
    return RunOptions(**{"results_dir": tmp_path / "results", "runs_dir": tmp_path / "runs", "leaderboard": False,
                         "jobs": 1, "device": "cpu", **kw})


# ---------------------------------------------------------------------------------------------
# 1. resumed scoring and the model
class Gain(torch.nn.Module):
    def __init__(self, g: float):
        super().__init__()
        self.g = torch.nn.Parameter(torch.tensor(g))

    def forward(self, x):
        return self.g * x


class GainAdapter(Adapter):
    name = "test-gain"
    description = "a gain (test)"

    def __init__(self, stop_after: int | None = None):
        self.calls, self.stop_after = 0, stop_after

    def build(self, g=1.0):
        return Gain(g)

    def enhance(self, model, noisy, clean=None):
        if noisy.shape[-1] != 160000:   # not the 10 s speed measurement
            self.calls += 1
            if self.stop_after is not None and self.calls > self.stop_after:
                raise KeyboardInterrupt
        return model(noisy)


SPEED = {"rtf_cpu_1thread": 0.0, "rtf_input_seconds": RTF_SECONDS, "causal": False, "latency_ms": None,
         "rtf_stream": None, "stream_chunk_samples": None}


def _score(pt, out, adapter, g, config=None):
    from bench.scoring.score import score

    return score(_found(adapter), Gain(g), Evaluation("main", pt), out, run_id="r", config=config or {"c": 1},
                 budget={"trained": False}, speed=SPEED, weights=None, training=None, ship_outputs=True,
                 metrics=("snr",), jobs=1)


def test_resumed_scoring_with_another_model_starts_over(tiny_pt, tmp_path, caplog):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _score(tiny_pt, out, GainAdapter(stop_after=1), 0.5)
    assert len((out / ".scoring.partial.jsonl").read_text().splitlines()) == 2   # fingerprint + one row
    with caplog.at_level(logging.WARNING):
        resumed = GainAdapter()
        _score(tiny_pt, out, resumed, 0.9)
    assert "of another model" in caplog.text and "discarded" in caplog.text
    assert resumed.calls == 2   # both utterances scored again
    fresh = _score(tiny_pt, tmp_path / "fresh", GainAdapter(), 0.9)
    assert (out / "per_utterance.csv").read_bytes() == (fresh / "per_utterance.csv").read_bytes()
    kept = sorted(p.name for p in (out / "enhanced").iterdir())
    assert kept == sorted(p.name for p in (fresh / "enhanced").iterdir()) and kept   # the listening files too
    assert all((out / "enhanced" / k).read_bytes() == (fresh / "enhanced" / k).read_bytes() for k in kept)


def test_resumed_scoring_with_the_same_model_reuses_the_rows(tiny_pt, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _score(tiny_pt, out, GainAdapter(stop_after=1), 0.5)
    resumed = GainAdapter()
    _score(tiny_pt, out, resumed, 0.5)
    assert resumed.calls == 1   # only the utterance left


def test_another_config_is_another_model(tiny_pt, tmp_path):
    from bench.scoring.runguard import model_fingerprint

    assert model_fingerprint(Gain(0.5), {"a": 1}) == model_fingerprint(Gain(0.5), {"a": 1})
    assert model_fingerprint(Gain(0.5), {"a": 1}) != model_fingerprint(Gain(0.5), {"a": 2})
    assert model_fingerprint(Gain(0.5), {"a": 1}) != model_fingerprint(Gain(0.50001), {"a": 1})
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _score(tiny_pt, out, GainAdapter(stop_after=1), 0.5, {"train": {"max_steps": 20}})
    resumed = GainAdapter()
    _score(tiny_pt, out, resumed, 0.5, {"train": {"max_steps": 40}})
    assert resumed.calls == 2


def test_bench_run_resume_with_a_larger_budget_rescores(tiny_pt, tmp_path, monkeypatch, caplog):
    """The issue's case: scoring interrupted, then `--resume` with a larger --max-steps: no row of the
    first model survives in the results."""
    import bench.scoring.score as score_mod
    from bench.scoring.results import load_run

    real = score_mod.enhance_one
    calls = []

    def interrupting(*a, **kw):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*a, **kw)

    import bench.verify.evidence

    # the float16 check of the weights enhances too; it is not what is interrupted here
    monkeypatch.setattr(bench.verify.evidence, "fp16_reproduces", lambda *a, **kw: False)
    monkeypatch.setattr(score_mod, "enhance_one", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run(_found(), tiny_pt, _opts(tmp_path, run_id="r", train_overrides={"max_steps": 2}))
    monkeypatch.setattr(score_mod, "enhance_one", real)
    with caplog.at_level(logging.WARNING):
        path = run(_found(), tiny_pt, _opts(tmp_path, run_id="r", resume=True, train_overrides={"max_steps": 4}))
    assert "discarded" in caplog.text
    r = load_run(path)
    assert r.summary["budget"]["steps"] == 4
    model, _, _ = load_checkpoint_model(TinyAdapter(), tmp_path / "runs" / "tiny-hard" / "tiny-conv" / "r" / "best.pt")
    r0 = load_run(path).summary
    fresh = score_mod.score(_found(), model, Evaluation("main", tiny_pt), tmp_path / "fresh", run_id="r",
                            config=json.loads((path / "config.json").read_text()), budget=r0["budget"],
                            speed=r0["speed"], weights=r0["weights"], training=r0["training"], ship_outputs=True,
                            jobs=1, metrics=tuple(r0["metrics"]))
    assert (path / "per_utterance.csv").read_bytes() == (fresh / "per_utterance.csv").read_bytes()


# ---------------------------------------------------------------------------------------------
# 2. names and paths
@pytest.mark.parametrize("run_id", ["ABS", "../../../../x", ".", "..", "a/b", "", "-x", "a b", "x" * 101, "a..b"])
@pytest.mark.parametrize("train_only", [False, True])
def test_escaping_run_ids_are_refused_before_anything_is_written(tiny_pt, tmp_path, run_id, train_only):
    if run_id == "ABS":
        run_id = str(tmp_path / "elsewhere")
    with pytest.raises(BenchError, match="invalid run id"):
        run(_found(), tiny_pt, _opts(tmp_path, run_id=run_id, train_overrides={"max_steps": 1}, train_only=train_only))
    assert sorted(tmp_path.iterdir()) == []


def test_tracks_load_by_registered_name_only(tmp_path, monkeypatch):
    tdir = tmp_path / "tracks"
    tdir.mkdir()
    (tmp_path / "evil.json").write_text(json.dumps(track_spec("evil")))
    (tdir / "escape.json").write_text(json.dumps(track_spec("../../escape")))
    (tdir / "renamed.json").write_text(json.dumps(track_spec("other")))
    monkeypatch.setattr(tracks_mod, "TRACK_DIR", tdir)
    tracks_mod.load_track.cache_clear()
    try:
        for name in ("../evil", str(tmp_path / "evil"), "evil", ".", ""):
            with pytest.raises(DataError, match="unknown track"):
                tracks_mod.load_track(name)
        with pytest.raises(DataError, match="field 'name'.*invalid track name"):
            tracks_mod.load_track("escape")
        with pytest.raises(DataError, match="differs from its file name"):
            tracks_mod.load_track("renamed")
    finally:
        tracks_mod.load_track.cache_clear()


def test_an_adapter_named_like_a_path_is_refused(tmp_path, tiny_pt):
    (tmp_path / "submissions").mkdir()
    (tmp_path / "submissions" / "evil.py").write_text(textwrap.dedent('''
        from bench.adapters.base import Adapter

        class Evil(Adapter):
            name = "../../x"
            description = "escapes"
    '''))
    with pytest.raises(AdapterError, match="name '../../x' is not lowercase letters"):
        discover(tmp_path)
    errors = []
    assert discover(tmp_path, strict=False, errors=errors) == {} and "is not lowercase" in str(errors[0][1])

    class Evil(TinyAdapter):
        name = "../../x"

    with pytest.raises(BenchError, match="invalid model name"):
        run(_found(Evil()), tiny_pt, _opts(tmp_path / "o", run_id="r", train_overrides={"max_steps": 1},
                                           train_only=True))
    assert not (tmp_path / "o").exists()


def test_inside_resolves_symlinks(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert inside(root, root / "a" / "b") == (root / "a" / "b").resolve()
    for p in (root / "link" / "x", root / ".." / "x", Path("/tmp")):
        with pytest.raises(BenchError, match="outside"):
            inside(root, p)


# ---------------------------------------------------------------------------------------------
# 3. budgets and training options
@pytest.mark.parametrize("budget", [{"max_steps": 0}, {"max_steps": -1}, {"max_steps": 1.5}, {"max_steps": True},
                                    {"max_minutes": -1}, {"max_minutes": 0}, {"max_minutes": float("nan")},
                                    {"max_minutes": float("inf")}, {"max_minutes": "5"}])
def test_zero_or_negative_budgets_are_refused(tiny_pt, tmp_path, budget):
    with pytest.raises(BenchError, match="must be an integer >= 1|must be a number of minutes > 0"):
        RunConfig.resolve(TinyAdapter(), train_overrides=budget, train=True)
    with pytest.raises(BenchError, match="is not valid"):
        run(_found(), tiny_pt, _opts(tmp_path, run_id="r", train_overrides=budget))
    assert not (tmp_path / "results").exists() and not any((tmp_path / "runs").rglob("*.pt"))


BAD_TRAINING = {
    "loss": [{}, {"l2": 1.0}, {"l1": -1.0}, {"l1": 0.0}, "l1"], "optimizer": ["sgd"], "lr": [0, -1e-3, "abc", float("nan")],
    "betas": [[0.9], [0.9, 1.0], "0.9"], "weight_decay": [-0.1], "batch_size": [0, -2, 2.5, True, "8"],
    "segment_seconds": [0, -1.0, 1e-6], "max_steps": [0, -1], "max_minutes": [0, -1.0], "warmup_steps": [-1, 0.5],
    "schedule": ["linear"], "min_lr_ratio": [-0.1, 1.5], "grad_clip": [-1.0, "x"], "valid_every": [0, "step"],
    "checkpoint_every": [0], "seed": [-1, 0.5], "num_workers": [-1], "cpu_threads": [0, "all"], "amp": ["yes", 1],
    "compile": ["true", 1], "noise": ["jax", 1], "shift": [-1, 0.5], "tilt_db": [-1, 30, "x"], "log_every": [0, "x"],
    "adversarial": ["yes", 1],
}


def test_every_training_option_has_a_rule():
    assert set(TRAIN_RULES) == set(DEFAULTS) == set(BAD_TRAINING)


@pytest.mark.parametrize("key, value", [(k, v) for k, vs in BAD_TRAINING.items() for v in vs])
def test_training_options_are_type_and_range_checked(key, value):
    with pytest.raises(BenchError) as exc:
        train_config(TinyAdapter(), None, {"max_steps": 2, key: value} if key != "max_steps" else {key: value})
    msg = str(exc.value)
    assert key.replace("_", "-") in msg or key in msg
    assert "must be" in msg and TRAIN_RULES[key][1] in msg


def test_every_adapter_default_and_preset_is_valid():
    from bench.adapters.base import check_model_values

    found = discover(strict=False)
    assert {"demucs", "convtasnet", "sepformer", "stft-mask-gru"} <= set(found)
    for name, f in found.items():
        a = f.adapter
        check_model_values(a, a.config, source=f"{name} config")
        for preset in [None, *a.presets]:
            check_model_values(a, (a.presets.get(preset) or {}).get("model", {}), source=f"{name} {preset}")
            if a.trainable:
                train_config(a, preset, {"max_steps": 1})


@pytest.mark.parametrize("overrides, message", [({"nope": 1}, "unknown model option"), ({"hidden": "abc"}, "expected int"),
                                                ({"hidden": 2.5}, "expected int"), ({"dropout": "x"}, "expected float")])
def test_model_options_are_checked_against_the_adapter(overrides, message):
    with pytest.raises(BenchError, match=message):
        RunConfig.resolve(TinyAdapter(), overrides=overrides)


# ---------------------------------------------------------------------------------------------
# 4. checkpoints and devices
def _checkpoint(path: Path, **changes) -> Path:
    a = TinyAdapter()
    model = a.build(**a.config)
    state = {"adapter": a.name, "model_config": dict(a.config), "train_config": {}, "preset": None, "step": 1,
             "model": model.state_dict(), "budget": {"trained": True, "steps": 1}}
    state.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del state[k]
    torch.save(state, path)
    return path


@pytest.mark.parametrize("changes, message", [
    ({"model": None}, "missing or mistyped field.*model"),
    ({"model_config": {"hidden": 8, "dropout": 0.1, "width": 3}}, "unknown model option.*width"),
    ({"model_config": {"hidden": 4, "dropout": 0.1}}, "weights do not fit"),
    ({"adapter": "other"}, "checkpoint is for adapter 'other'"),
    ({"step": "1"}, "mistyped field.*step"),
])
def test_bad_checkpoints_are_clear_errors(tmp_path, changes, message):
    path = _checkpoint(tmp_path / "best.pt", **changes)
    with pytest.raises(BenchError, match=message):
        load_checkpoint_model(TinyAdapter(), path)


def test_a_list_or_a_folder_is_not_a_checkpoint(tmp_path):
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(BenchError, match="not a benchmark checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    with pytest.raises(BenchError, match="is a folder"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "CPU", "", "cuda:99" if torch.cuda.is_available() else "cuda"])
def test_unknown_devices_are_refused(device):
    with pytest.raises(BenchError, match="device"):
        resolve_device(device)
