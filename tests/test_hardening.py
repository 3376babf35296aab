"""The cases of issue 17 ("tried as a careful new user would"), each reproduced first, then fixed:

1. a resumed scoring with another model discards the partial rows (bench/runguard.py);
2. run ids, track and model names that would lead outside results/, runs/ or the repo are refused
   before anything is written (bench/names.py); tracks load by registered name only;
3. zero or negative budgets and every out-of-range training option are refused with the range;
4. user-caused OSErrors, unknown --set keys, bad checkpoints and devices give one line (see also
   tests/test_bad_args.py, which runs every subcommand with a table of bad arguments);
5. a run folder and a prepared track are locked; default run ids are unique;
6. worker pools die with their parent (kill -9);
7. `bench enhance` checks its output folder before running the model and enhances long files in
   blocks with bounded memory, equal to the whole-file output for a model with a known receptive field;
8. prepare's error headline counts unreadable files.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import bench.data.tracks as tracks_mod
from bench import REPO_ROOT
from bench.adapters import Adapter, Found, discover
from bench.errors import AdapterError, BenchError, DataError
from bench.locks import LOCK_NAME, folder_lock
from bench.names import RUN_ID_RE, inside
from bench.pipeline import RunOptions, new_run_id, resolve_device, run
from bench.runconfig import TRAIN_RULES, RunConfig, train_config
from bench.train import DEFAULTS, load_checkpoint, load_checkpoint_model

from conftest import make_tiny_prepared, make_vctk_corpus, track_spec
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


def _score(pt, out, adapter, g, config=None):
    from bench.score import score

    return score(_found(adapter), Gain(g), pt, out, run_id="r", config=config or {"c": 1}, budget={"trained": False},
                 metrics=["snr"], jobs=1)


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
    from bench.runguard import model_fingerprint

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
    import bench.score as score_mod
    from bench.results import load_run

    real = score_mod.enhance_one
    calls = []

    def interrupting(*a, **kw):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*a, **kw)

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
    fresh = score_mod.score(_found(), model, tiny_pt, tmp_path / "fresh", run_id="r",
                            config=json.loads((path / "config.json").read_text()), budget={"trained": True}, jobs=1)
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
        from bench.adapters import Adapter

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
    "compile": ["true", 1],
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
    from bench.adapters import check_model_values

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


# ---------------------------------------------------------------------------------------------
# 5. locks and run ids
def _holder(target: Path, kind: str = "folder") -> subprocess.Popen:
    """Another process holding the lock of `target` until killed."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom bench.locks import folder_lock\n"
            f"with folder_lock(Path({str(target)!r}), 'x'):\n    print('held', flush=True)\n    time.sleep(120)\n")
    p = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_locked_folder_is_refused_and_freed_when_its_holder_dies(tmp_path):
    p = _holder(tmp_path / "run")
    try:
        with pytest.raises(BenchError, match=f"in use by bench process {p.pid}"):
            with folder_lock(tmp_path / "run", "run folder"):
                pass
    finally:
        p.kill()
        p.wait()
    assert (tmp_path / "run" / LOCK_NAME).exists()   # left by kill -9: not a stale lock
    with folder_lock(tmp_path / "run", "run folder"):
        assert (tmp_path / "run" / LOCK_NAME).read_text() == str(os.getpid())
    assert not (tmp_path / "run" / LOCK_NAME).exists()   # removed on release
    with folder_lock(tmp_path / "run", "run folder", remove_empty_folder=True):
        pass
    assert not (tmp_path / "run").exists()   # and so is the folder it left empty, when asked


def test_two_runs_on_one_run_id(tiny_pt, tmp_path):
    """The issue's case: two `bench run` forced onto one --run-id; the second is refused before it writes."""
    for folder in (tmp_path / "results" / "tiny-hard" / "tiny-conv" / "same",
                   tmp_path / "runs" / "tiny-hard" / "tiny-conv" / "same"):
        p = _holder(folder)
        try:
            with pytest.raises(BenchError, match="in use by bench process"):
                run(_found(), tiny_pt, _opts(tmp_path, run_id="same", train_overrides={"max_steps": 1}))
        finally:
            p.kill()
            p.wait()
        assert sorted(q.name for q in folder.iterdir()) == [LOCK_NAME]


def test_a_prepared_track_being_prepared_is_refused(tmp_path):
    from bench.data.prepare import prepare
    from bench.data.tracks import Track
    from bench.protocol import Protocol

    corpus = make_vctk_corpus(tmp_path / "corpus", "0.92", ("p225", "p226", "p227"), 1, duration=0.3)
    p = _holder(tmp_path / "prepared" / "tiny-lock")
    try:
        with pytest.raises(BenchError, match="prepared track .* in use"):
            prepare(Track(track_spec("tiny-lock")), Protocol.load(), corpus, tmp_path / "prepared", jobs=1)
    finally:
        p.kill()
        p.wait()
    prepare(Track(track_spec("tiny-lock")), Protocol.load(), corpus, tmp_path / "prepared", jobs=1)


def test_default_run_ids_are_unique():
    ids = [new_run_id() for _ in range(300)]   # all in the same second or two: the suffix tells them apart
    assert len(set(ids)) == len(ids) and all(RUN_ID_RE.match(i) for i in ids)


# ---------------------------------------------------------------------------------------------
# 6. worker pools die with their parent
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"   # a zombie has ended
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


POOL_PARENT = {
    # a pool made by bench.workers, and a plain one (the control: its workers outlive the parent)
    "worker_pool": "from bench.workers import worker_pool as make\npool = make(2)\n",
    "plain": "from concurrent.futures import ProcessPoolExecutor as make\npool = make(2)\n",
    # the real pools of prepare, verify and scoring, their work made slow
    "prepare": textwrap.dedent("""
        import time, bench.data.prepare as P
        from conftest import make_vctk_corpus, track_spec
        from bench.data.tracks import Track
        from bench.protocol import Protocol
        corpus = make_vctk_corpus(Path(sys.argv[1]) / 'c', '0.92', ('p225', 'p226', 'p227'), 2, duration=0.2)
        def _prepare_one(job):
            print('busy', flush=True)
            time.sleep(120)
        P._prepare_one = _prepare_one
        P.prepare(Track(track_spec('t')), Protocol.load(), corpus, Path(sys.argv[1]) / 'p', jobs=2)
    """),
    "verify": textwrap.dedent("""
        import time, bench.data.verify as V
        from conftest import make_tiny_prepared
        pt = make_tiny_prepared(Path(sys.argv[1]), 't', 0.2)
        def _check(args):
            print('busy', flush=True)
            time.sleep(120)
        V._check = _check
        V.verify_prepared(pt, jobs=2)
    """),
    "score": textwrap.dedent("""
        import time, bench.score as S
        from conftest import make_tiny_prepared
        from bench.adapters import get_adapter
        pt = make_tiny_prepared(Path(sys.argv[1]), 't', 0.2)
        def _score_one(args):
            print('busy', flush=True)
            time.sleep(120)
        S._score_one = _score_one
        f = get_adapter('noisy')
        S.score(f, f.adapter.build(), pt, Path(sys.argv[1]) / 'r', run_id='r', config={}, budget={}, jobs=2)
    """),
}


@pytest.mark.parametrize("kind", list(POOL_PARENT))
def test_worker_pools_die_with_their_parent(tmp_path, kind):
    code = "import sys\nfrom pathlib import Path\n" + POOL_PARENT[kind]
    if kind in ("worker_pool", "plain"):
        code += "import time\nfuts = [pool.submit(time.sleep, 120) for _ in range(2)]\nprint('busy', flush=True)\ntime.sleep(120)\n"
    parent = subprocess.Popen([PY, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert parent.stdout.readline().strip() == "busy", f"{kind}: the parent did not start its workers"
        deadline = time.time() + 10
        while len(workers := _children(parent.pid)) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert len(workers) >= 2, workers
    finally:
        parent.kill()   # kill -9
        parent.wait()
    deadline = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:
        os.kill(w, 9)
    if kind == "plain":
        assert survivors, "control: a plain pool's workers should outlive a killed parent"
    else:
        assert not survivors, f"{kind}: workers {survivors} outlived their parent"


# ---------------------------------------------------------------------------------------------
# 7. enhance: the output folder first; long files in blocks
class ConvNet(torch.nn.Module):
    """Two 'same' convolutions of kernel 33: a receptive field of 32 samples on each side."""

    RF = 32

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 33, padding=16), torch.nn.Tanh(),
                                       torch.nn.Conv1d(4, 1, 33, padding=16))

    def forward(self, x):
        return self.net(x[:, None])[:, 0]


class ConvAdapter(Adapter):
    name = "test-conv"
    description = "fixed receptive field (test)"

    def build(self):
        return ConvNet().eval()


def test_blocks_equal_the_whole_file_for_a_known_receptive_field():
    from bench.enhance import enhance_blocks

    model = ConvNet()
    seen = []

    def run_model(part):
        seen.append(part.shape[-1])
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))).numpy()

    x = np.random.default_rng(0).standard_normal((2, 20011)).astype(np.float32)
    whole = run_model(x)
    block, fade = 2000, 32
    for context in (ConvNet.RF + fade // 2, 200):
        seen.clear()
        y = enhance_blocks(run_model, x, block, context, fade)
        assert np.abs(y - whole).max() < 1e-6, context
        assert max(seen) <= block + 2 * context   # the model never sees more: bounded memory
    y = enhance_blocks(run_model, x, block, ConvNet.RF + fade // 2 - 4, fade)   # too little context
    assert np.abs(y - whole).max() > 1e-4


def test_enhance_array_in_blocks_at_48k(tmp_path):
    from bench.enhance import enhance_array

    x = np.random.default_rng(1).standard_normal((1, 48000 * 5)).astype(np.float32) * 0.1
    a, model = ConvAdapter(), ConvNet()
    whole = enhance_array(a, model, x, 48000, block_seconds=0)
    blocks = enhance_array(a, model, x, 48000, block_seconds=1.0, context_seconds=0.05)
    assert blocks.shape == whole.shape == x.shape
    assert np.abs(blocks - whole).max() < 1e-6


def _enhance(capsys, *args):
    from bench.cli import main

    rc = main(["enhance", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def test_enhance_checks_the_output_folder_before_the_model(tmp_path, capsys, monkeypatch):
    import bench.enhance as E

    def no_model(*a, **kw):
        raise AssertionError("the model was loaded before the output folder was checked")

    monkeypatch.setattr(E, "resolve_model", no_model)
    wav = tmp_path / "in.wav"
    sf.write(str(wav), np.zeros(1600, np.float32), 16000)
    (tmp_path / "file").write_text("x")
    rc, text = _enhance(capsys, "--run", "noisy", wav, "-o", tmp_path / "file" / "out")
    assert rc == 2 and "cannot write the output folder" in " ".join(text.split()) and "Traceback" not in text
    assert "Not a directory" in text


# ---------------------------------------------------------------------------------------------
# 8. prepare's headline counts every failed file
def test_prepare_headline_counts_unreadable_files(tmp_path, monkeypatch, capsys):
    from bench.cli import main
    from bench.data.manifest import write_manifest
    from bench.data.prepare import describe_sources

    tdir, mdir = tmp_path / "tracks", tmp_path / "manifests"
    tdir.mkdir()
    mdir.mkdir()
    spec = track_spec("tiny-h", "0.92", {"train": ["p225"], "valid": ["p226"], "test": ["p227"]}, manifest="tiny-h.csv")
    (tdir / "tiny-h.json").write_text(json.dumps(spec))
    monkeypatch.setattr(tracks_mod, "TRACK_DIR", tdir)
    monkeypatch.setattr(tracks_mod, "MANIFEST_DIR", mdir)
    tracks_mod.load_track.cache_clear()
    corpus = make_vctk_corpus(tmp_path / "data" / "tiny-h", "0.92", ("p225", "p226", "p227"), 2, duration=0.3)
    write_manifest(mdir / "tiny-h.csv", describe_sources(tracks_mod.Track({**spec, "manifest": None}), corpus, jobs=1))
    tracks_mod.load_track.cache_clear()
    d = corpus / "wav48_silence_trimmed"
    (d / "p225/p225_001_mic1.flac").unlink()                                                   # missing
    x, sr = sf.read(str(d / "p226/p226_001_mic1.flac"), dtype="int16")
    x[100] ^= 1
    sf.write(str(d / "p226/p226_001_mic1.flac"), x, sr)                                       # changed
    (d / "p227/p227_001_mic1.flac").write_bytes(b"not audio at all" * 64)                     # unreadable
    try:
        rc = main(["data", "prepare", "--track", "tiny-h", "--data-root", str(tmp_path / "data"), "--prepared-dir",
                   str(tmp_path / "prepared"), "--jobs", "1"])
    finally:
        tracks_mod.load_track.cache_clear()
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2
    assert "1 missing, 1 changed and 1 unreadable or invalid source file(s) under the manifest of tiny-h" in err
    assert "(3 of 6 utterances failed)" in err and "p227_001_mic1.flac: cannot decode audio" in err
