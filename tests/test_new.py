"""Tests of `bench new` (bench/adapters/scaffold.py): names are validated, the scaffold is generated into a
temporary root (never the repository), passes `bench check` as generated, and trains a few steps
through the real pipeline (train -> score -> results) on a tiny prepared track."""

from __future__ import annotations

import json

import pytest

from bench import REPO_ROOT
from bench.adapters.base import discover
from bench.cli.main import main
from bench.verify.check import check
from bench.verify.contract import PASS, WARN
from bench.core.errors import BenchError
from bench.adapters.scaffold import class_name, folder_name, scaffold, validate_name

from conftest import make_tiny_prepared

REPO_SUBMISSIONS = sorted(p.name for p in (REPO_ROOT / "submissions").iterdir())


@pytest.fixture
def root(tmp_path):
    (tmp_path / "submissions").mkdir()
    (tmp_path / "baselines").mkdir()
    return tmp_path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_prepared(tmp_path_factory.mktemp("scaffold-track"), "tiny-scaffold", duration=1.0)


@pytest.mark.parametrize("bad", ["My-Model", "my_model", "1model", "my--model", "-model", "model-", "my model",
                                 "mödel", "", "a" * 41])
def test_bad_names_are_refused(bad, root):
    with pytest.raises(BenchError, match="invalid model name") as ei:
        validate_name(bad, root)
    assert "lowercase letters, digits and single '-'" in str(ei.value)
    assert not any((root / "submissions").iterdir())


def test_bad_name_suggests_a_valid_one(root):
    with pytest.raises(BenchError, match="bench new my-model"):
        validate_name("My_Model", root)


def test_names_of_existing_adapters_and_folders_are_refused(root):
    with pytest.raises(BenchError, match="already exists"):
        validate_name("noisy")                                   # a baseline of the repository
    (root / "submissions" / "taken_folder").mkdir()
    with pytest.raises(BenchError, match="taken_folder already exists"):
        validate_name("taken-folder", root)
    (root / "baselines" / "other_file.py").write_text(
        "from bench.adapters.base import Adapter\nclass A(Adapter):\n    name = 'taken-name'\n    description = 'x'\n")
    with pytest.raises(BenchError, match="an adapter named 'taken-name' already exists"):
        validate_name("taken-name", root)
    with pytest.raises(BenchError, match="other_file.py already exists"):
        validate_name("other-file", root)


def test_names_map_to_folder_and_class():
    assert folder_name("stft-mask-gru") == "stft_mask_gru"
    assert class_name("stft-mask-gru") == "StftMaskGru"
    assert class_name("net2-x") == "Net2X"


def test_scaffold_writes_adapter_and_model_card(root):
    folder = scaffold("my-net", root, author="Ada Lovelace")
    assert folder == root / "submissions" / "my_net"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "adapter.py"]
    card = (folder / "README.md").read_text()
    for field in ("Authors:** Ada Lovelace", "Paper:**", "Licence:**", "Training budget:**", "Notes:**"):
        assert field in card
    src = (folder / "adapter.py").read_text()
    assert 'name = "my-net"' in src and "class MyNet(Adapter)" in src and "presets = {" in src
    with pytest.raises(BenchError, match="already exists"):
        scaffold("my-net", root)


def test_scaffold_passes_bench_check_as_generated(root):
    scaffold("fresh-net", root, author="A. Tester")
    rep = check("fresh-net", root=root, rtf=False)
    assert rep.ok, [(r.rule, r.input, r.detail) for r in rep.failures]
    for rule in ("import", "config", "cpu", "shape", "batch", "determinism", "finite", "train"):
        assert rep.status_of(rule) == PASS, rule
    # the card is complete; the 'CHANGE ME' markers are reminders (a failure only with --strict)
    assert rep.status_of("model-card") == WARN
    assert any(r.rule == "model-card" and r.status == PASS for r in rep.results)
    assert not check("fresh-net", root=root, rtf=False, strict=True).ok


def test_cli_new_then_check(root, capsys):
    assert main(["new", "cli-net", "--root", str(root), "--author", "A. Tester"]) == 0
    out = capsys.readouterr().out
    assert "submissions/cli_net" in out and "bench check cli-net" in out and "bench run --model cli-net --preset quick" in out
    assert main(["check", "cli-net", "--root", str(root), "--no-rtf"]) == 0
    assert main(["new", "Bad_Name", "--root", str(root)]) == 2
    assert "invalid model name" in capsys.readouterr().err


def test_scaffold_trains_a_few_steps_through_the_pipeline(root, tiny, tmp_path):
    from bench.run.pipeline import RunOptions, run
    from bench.scoring.results import load_run

    scaffold("train-net", root, author="A. Tester")
    found = discover(root)["train-net"]
    assert found.kind == "submission"
    opts = RunOptions(preset="quick", train_overrides={"max_steps": 3, "batch_size": 2, "segment_seconds": 0.5,
                                                      "valid_every": 3, "num_workers": 0},
                      run_id="scaffold", results_dir=tmp_path / "results", runs_dir=tmp_path / "runs",
                      leaderboard=False, jobs=1)
    path = run(found, tiny, opts)
    r = load_run(path)                                   # validates schema, hashes, recomputation
    assert r.summary["budget"]["steps"] == 3 and r.summary["budget"]["trained"]
    assert r.summary["model"]["parameters"] > 0
    assert (tmp_path / "runs" / "tiny-scaffold" / "train-net" / "scaffold" / "best.pt").exists()
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["model_config"] == found.adapter.config      # the adapter's class attributes are the config


def test_the_repository_is_left_untouched():
    assert sorted(p.name for p in (REPO_ROOT / "submissions").iterdir()) == REPO_SUBMISSIONS
