"""The board trusts nothing a run says about itself (issue 26): each forgery of the audit, each path that
leaves its run folder and each folder that cannot be read, built on a copy of real committed results, is
refused (or marked) naming the field, by the board (`collect`), `bench verify` and `bench retire`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.board.retire import retire
from bench.board.rows import collect
from bench.core.audio import write_wav_pcm16
from bench.core.errors import BenchError
from bench.protocol import Protocol
from bench.scoring.results import RESULTS_DIR, load_run, per_utterance_bytes, sha256_bytes, summarize_metrics
from bench.verify import derived
from bench.verify.evidence import verify_run

from conftest import edit_summary

SET = "vctk-mini/stft-v1"
RUNS = {   # model -> run id, on the ranked set (copied from the repository's results/)
    "noisy": "20261201-040215-86a828d1", "oracle-psm": "20261201-062034-e62241b2",
    "oracle-irm": "20261201-061659-7d8f15bb", "spectral-subtraction": "20261201-040758-318c22d7",
    "gtcrn": "20261201-052756-dc633003", "stft-mask-gru": "20261201-062401-20b1ffb5",
    "demucs": "20261201-112157-6e9b7845", "convtasnet": "20261207-185053-6d6e449d",
}
RETIRED_DEMUCS = "20261201-044340-780d73ff"
HEAVY_DEMUCS = "20261201-143542-4553d40c"   # trained on stft-heavy-v1: its weights live in that set's folder
QUIET_CONVTASNET = "20261201-100733-28891267"   # trained on stft-heavy-v1 on SI-SDR alone: 33 dB too quiet
LATER = "2999-01-01T00:00:00+00:00"


def _link_or_copy(src, dst):
    """Audio and weights are linked (tests replace them, never write into them), the rest copied."""
    if src.endswith((".flac", ".safetensors")):
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("forgery") / "results"
    folders = [f"{SET}/{m}/{r}" for m, r in RUNS.items()]
    folders += [f"{SET}/demucs/{RETIRED_DEMUCS}", f"{SET}/demucs/{HEAVY_DEMUCS}",
                f"vctk-mini/stft-heavy-v1/demucs/{HEAVY_DEMUCS}", f"{SET}/convtasnet/{QUIET_CONVTASNET}",
                f"vctk-mini/stft-heavy-v1/convtasnet/{QUIET_CONVTASNET}"]
    for f in folders:
        shutil.copytree(RESULTS_DIR / f, root / f, copy_function=_link_or_copy)
    return root


@pytest.fixture
def tree(base, tmp_path) -> Path:
    t = tmp_path / "results"
    shutil.copytree(base, t, copy_function=_link_or_copy, symlinks=True)
    return t


def run_dir(tree: Path, model: str, run_id: str | None = None, key: str = SET) -> Path:
    return tree / key / model / (run_id or RUNS[model])


def edit(run: Path, fn) -> Path:
    """`fn` applied to the run's summary.json (written as json.dumps does: NaN as NaN)."""
    s = json.loads((run / "summary.json").read_text())
    fn(s)
    (run / "summary.json").write_text(json.dumps(s, indent=2))
    return run


def set_(path: str, value):
    """A summary edit: the field `a/b/c` set to `value`."""
    *head, last = path.split("/")

    def fn(s):
        d = s
        for k in head:
            d = d[k]
        d[last] = value
    return fn


def rewrite_scores(run: Path, df: pd.DataFrame) -> None:
    """A consistent edit: per_utterance.csv replaced, every statistic and hash of the summary recomputed."""
    raw = per_utterance_bytes(df)
    (run / "per_utterance.csv").write_bytes(raw)

    def fn(s):
        s["metrics"] = {m: v for m, v in summarize_metrics(df, [m for m in s["metrics"] if m in df]).items()}
        s["metric_versions"] = {m: v for m, v in s["metric_versions"].items() if m in s["metrics"]}
        s["files"]["per_utterance_sha256"] = sha256_bytes(raw)
    edit_summary(run, fn)


def scores(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "per_utterance.csv", dtype={"utt_id": str, "errors": str, "output_sha256": str})


def only_metrics(run: Path, keep=("si_sdr", "snr")) -> None:
    """The run cut to cheap metrics (a consistent, valid run: re-scoring it takes a second)."""
    df = scores(run)
    drop = [c for c in df.columns if c.removeprefix("noisy_") not in (*keep, "utt_id", "seconds", "output_sha256",
                                                                     "errors")]
    rewrite_scores(run, df.drop(columns=drop))


def refusal(tree: Path, run: Path) -> str:
    board = collect(tree)
    shown = run.relative_to(tree.parent).as_posix()
    reasons = [r for p, r in board.refused if p == shown]
    assert reasons, f"{shown} not refused; refused: {board.refused}"
    return reasons[0]


def row(tree: Path, run: Path, key: str = SET):
    board = collect(tree)
    assert not [p for p, _ in board.refused], board.refused
    rows = [r for r in board.rows(key) if r.run.path == run]
    return rows[0] if rows else None


# ---------------------------------------------------------------------------------------------
# refused: what summary.json says against the adapter, config.json and the weights
@pytest.mark.parametrize("model, field, value, names", [
    ("oracle-psm", "model/oracle", False, "model.oracle"),
    ("gtcrn", "model/external", False, "model.external"),
    ("gtcrn", "model/pretrained_on", None, "model.pretrained_on"),
    ("demucs", "model/causal", False, "model.causal"),
    ("spectral-subtraction", "model/trainable", True, "model.trainable"),
    ("stft-mask-gru", "budget/trained", False, "budget.trained"),
    ("demucs", "model/parameters", 1000, "model.parameters"),
    ("demucs", "budget/max_steps", 300, "budget.max_steps"),
    ("demucs", "budget/steps", 9999, "budget.steps"),
    ("demucs", "model/preset", "full", "model.preset"),
    ("demucs", "training/protocol", "stft-heavy-v1", "training.protocol"),
    ("demucs", "training/protocol_sha256", "0" * 64, "training.protocol_sha256"),
    ("demucs", "ci/confidence", 0.5, "ci.confidence"),
    ("demucs", "ci/resamples", 1000, "ci.resamples"),
    ("demucs", "ci/seed", 7, "ci.seed"),
    ("convtasnet", "budget/valid_scale", float("nan"), "budget/valid_scale"),
    ("demucs", "metrics/pesq_wb/mean", float("nan"), "metrics/pesq_wb/mean"),
])
def test_a_field_contradicting_the_code_or_files_is_refused(tree, model, field, value, names):
    run = edit(run_dir(tree, model), set_(field, value))
    assert names in refusal(tree, run)
    assert not verify_run(run, results_root=tree, mode="fast").ok


def test_heavy_trained_demucs_relabelled_as_trained_on_the_benchmark_protocol(tree):
    """Its recorded hash still the heavy tier's: shown as `demucs · quick`, replacing the real row, before."""
    run = run_dir(tree, "demucs", HEAVY_DEMUCS)
    (run / "config.json").write_text(json.dumps({**json.loads((run / "config.json").read_text()),
                                                 "protocol": "stft-v1"}))
    edit(run, set_("training/protocol", "stft-v1"))
    assert "training.protocol stft-v1 hashes to" in refusal(tree, run)


def test_missing_config_json_is_refused_and_a_retired_run_does_not_come_back(tree):
    run = run_dir(tree, "demucs")
    retired = run_dir(tree, "demucs", RETIRED_DEMUCS)
    assert load_run(retired).summary["weights"]["reason"].startswith("superseded on the board")
    (run / "config.json").unlink()
    assert "config.json: missing" in refusal(tree, run)
    board = collect(tree)
    assert RETIRED_DEMUCS not in [r.run.run_id for r in board.rows(SET)]


def test_copied_scores_under_another_model_are_refused(tree):
    """oracle-psm's scores and outputs under stft-mask-gru, untrained, weights gone, one score +1e-6."""
    run = run_dir(tree, "stft-mask-gru")
    src = run_dir(tree, "oracle-psm")
    shutil.rmtree(run)
    shutil.copytree(src, run, copy_function=_link_or_copy)
    df = scores(run)
    df.loc[0, "pesq_wb"] += 1e-6
    rewrite_scores(run, df)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "model": "stft-mask-gru"}))
    edit(run, lambda s: (s.update(run_id=RUNS["stft-mask-gru"], created=LATER),
                         s["model"].update(name="stft-mask-gru", oracle=False, causal=True)))
    assert "budget.trained" in refusal(tree, run) or "model." in refusal(tree, run)


@pytest.mark.parametrize("how", ["1e-6, shuffled, extra column", "output hashes only"])
def test_the_copy_check_compares_sets_not_bytes(tree, how):
    """oracle-irm's scores passed off as spectral-subtraction's (a training-free model: flags agree)."""
    run = run_dir(tree, "spectral-subtraction")
    mine, theirs = scores(run), scores(run_dir(tree, "oracle-irm"))
    if how == "output hashes only":
        df = mine.copy()
        df["output_sha256"] = theirs.set_index("utt_id").loc[df["utt_id"], "output_sha256"].to_numpy()
        what = "output_sha256"
    else:
        df = theirs.copy()
        df["output_sha256"] = mine["output_sha256"]
        df.loc[3, "stoi"] += 1e-6
        cols = [c for c in df.columns if not c.startswith("noisy_")]
        df[cols] = df[cols].sample(frac=1.0, random_state=0).to_numpy()   # scores moved between utterances
        df[[c for c in df.columns if c.startswith("noisy_")]] = mine[[c for c in mine.columns
                                                                    if c.startswith("noisy_")]].to_numpy()
        df["utt_id"] = mine["utt_id"]
        df["extra"] = 1.0
        what = "per-utterance scores"
    rewrite_scores(run, df)
    edit(run, set_("created", LATER))
    assert f"its {what} repeat those of results/{SET}/oracle-irm" in refusal(tree, run)


# ---------------------------------------------------------------------------------------------
# marked: the row is shown, with why it is not clean
@pytest.mark.parametrize("forge, mark", [
    (lambda r: edit(r, set_("provenance/dirty_paths", ["bench/board/rows.py"])), "dirty"),
    (lambda r: (r / "env.json").write_text(json.dumps({**json.loads((r / "env.json").read_text()),
                                                        "git": {"commit": "0" * 40, "dirty": False}})), "dirty"),
    (lambda r: edit(r, set_("provenance/commit", "05fd71e74cad26a16855c347a61dfbf2a25cbfcd")),
     "has no baselines/demucs/adapter.py"),
    (lambda r: edit(r, set_("provenance/commit", "not-a-commit-at-all")), "'not-a-commit-at-all' is no commit id"),
    (lambda r: edit(r, set_("provenance/commit", "1" * 40)), "is not in this repository"),
    (lambda r: edit(r, set_("budget/valid_scale", None)), "budget.valid_scale"),
    (lambda r: (r / "weights.safetensors").unlink(), "weights missing (weights.file"),
])
def test_a_run_whose_evidence_is_missing_is_marked(tree, forge, mark):
    run = run_dir(tree, "demucs")
    forge(run)
    r = row(tree, run)
    assert r is not None and any(mark in m for m in r.marks), r and r.marks


def test_git_unavailable_is_said_in_the_mark(tree, monkeypatch):
    monkeypatch.setattr(derived.shutil, "which", lambda name: None)
    r = row(tree, run_dir(tree, "demucs"))
    assert derived.NO_GIT in r.marks


def test_valid_scale_is_checked_against_the_shipped_outputs(tree, vctk_mini):
    """The heavy-trained convtasnet's outputs are 33 dB too quiet; a summary saying valid_scale +0.9 hid the
    mark. `bench verify` re-derives it from the outputs and the clean references."""
    run = run_dir(tree, "convtasnet", QUIET_CONVTASNET)
    only_metrics(run, ("si_sdr",))
    assert verify_run(run, results_root=tree, mode="rescore", jobs=1).ok
    edit(run, set_("budget/valid_scale", 0.9))
    c = verify_run(run, results_root=tree, mode="rescore", jobs=1)
    assert any("budget.valid_scale is +0.900 (ok)" in p and "(quiet" in p for p in c.problems), c.problems


@pytest.mark.parametrize("forge", ["scores", "outputs"])
def test_consistent_edits_of_scores_or_outputs_fail_verify(tree, vctk_mini, forge):
    """Every statistic recomputed (CI's hash checks pass); re-scoring the shipped outputs does not."""
    run = run_dir(tree, "spectral-subtraction")
    only_metrics(run, ("si_sdr",))
    df = scores(run)
    if forge == "scores":
        df.loc[0, "si_sdr"] += 0.01
    else:
        from bench.core.audio import sha256_pcm16, to_pcm16
        from bench.verify.evidence import _prepared_of
        pt = _prepared_of(load_run(run), None)
        for i, u in enumerate(df["utt_id"][:3]):
            clean = pt.load_clean("test", u)
            (run / "enhanced" / f"{u}.flac").unlink()
            write_wav_pcm16(run / "enhanced" / f"{u}.flac", clean)
            df.loc[i, "output_sha256"] = sha256_pcm16(to_pcm16(clean))
    rewrite_scores(run, df)
    assert verify_run(run, results_root=tree, mode="fast").ok
    c = verify_run(run, results_root=tree, mode="rescore", jobs=1)
    assert any("si_sdr differs by up to" in p for p in c.problems), c.problems


# ---------------------------------------------------------------------------------------------
# paths stay home; one bad folder never stops the board
def _outside(tree: Path) -> Path:
    o = tree.parent / "outside"
    o.mkdir(exist_ok=True)
    (o / "keep.txt").write_text("not the benchmark's")
    return o


@pytest.mark.parametrize("field, value", [
    ("outputs/dir", "../../../../../outside"),
    ("outputs/dir", f"../../noisy/{RUNS['noisy']}/enhanced"),
    ("weights/file", "../outside/weights.safetensors"),
    ("weights/file", f"{SET}/demucs-gan/20261201-134422-bf1f53f0/weights.safetensors"),
    ("weights/file", f"/{SET}/demucs/{RUNS['demucs']}/weights.safetensors"),
])
def test_recorded_paths_outside_the_run_are_refused_by_board_verify_and_retire(tree, field, value):
    outside = _outside(tree)
    (outside / "weights.safetensors").write_bytes(b"x")
    run = edit(run_dir(tree, "demucs"), set_(field, value))
    name = field.replace("/", ".")
    assert name in refusal(tree, run)
    c = verify_run(run, results_root=tree, mode="fast")
    assert not c.ok and name in c.problems[0]
    with pytest.raises(BenchError, match=name.replace(".", r"\.")):
        retire(run, tree)
    assert (outside / "keep.txt").exists() and (outside / "weights.safetensors").exists()
    assert (run_dir(tree, "noisy") / "enhanced").is_dir()


def test_retire_deletes_only_inside_the_run_folders(tree):
    """A newer run of demucs' configuration takes the row: retiring the older drops its outputs and weights,
    nothing else."""
    older = run_dir(tree, "demucs")
    newer = run_dir(tree, "demucs", "29990101-000000")
    shutil.copytree(older, newer, copy_function=_link_or_copy)
    edit(newer, lambda s: (s.update(run_id=newer.name, created=LATER),
                           s["weights"].update(file=f"{SET}/demucs/{newer.name}/weights.safetensors")))
    before = {p for p in tree.rglob("*") if p.is_file()}
    changed = retire(older, tree)
    gone = before - {p for p in tree.rglob("*") if p.is_file()}
    assert changed == [older] and gone and all(older in p.parents for p in gone)


def test_a_symlinked_run_folder_is_refused_in_one_line(tree):
    outside = _outside(tree) / "run"
    shutil.copytree(run_dir(tree, "spectral-subtraction"), outside, copy_function=_link_or_copy)
    link = tree / SET / "spectral-subtraction" / "elsewhere"
    link.symlink_to(outside, target_is_directory=True)
    reason = refusal(tree, link)
    assert "symbolic link" in reason and "\n" not in reason
    with pytest.raises(BenchError, match="symbolic link"):
        retire(link, tree)
    assert (outside / "enhanced").is_dir()


def test_a_symlinked_output_fails_verify(tree):
    run = run_dir(tree, "spectral-subtraction")
    out = run / "enhanced" / f"{scores(run)['utt_id'][0]}.flac"
    target = _outside(tree) / "x.flac"
    shutil.copy(out, target)
    out.unlink()
    out.symlink_to(target)
    c = verify_run(run, results_root=tree, mode="fast")
    assert any("a link out of the outputs folder" in p for p in c.problems), c.problems


@pytest.mark.parametrize("content, reason", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"schema_version": 2,', "not valid JSON"),
    (b"\xff\xfe{}", "cannot be read"),
])
def test_a_folder_that_cannot_be_read_is_one_refused_row(tree, content, reason):
    run = run_dir(tree, "gtcrn")
    (run / "summary.json").write_bytes(content.encode() if isinstance(content, str) else content)
    assert reason in refusal(tree, run)
    board = collect(tree)
    assert len(board.refused) == 1 and any(r.run.model == "demucs" for r in board.rows(SET))
    assert not verify_run(run, results_root=tree, mode="fast").ok


def test_a_run_of_no_evaluation_set_is_refused(tree):
    """A valid run in a folder of a set no track evaluates (so762-test is scored under stft-v1 only)."""
    heavy = Protocol.load("stft-heavy-v1")
    src = RESULTS_DIR / "so762-test" / "stft-v1" / "noisy" / RUNS["noisy"]
    run = tree / "so762-test" / "stft-heavy-v1" / "noisy" / RUNS["noisy"]
    shutil.copytree(src, run)
    edit(run, lambda s: (s["benchmark"].__setitem__("protocol", heavy.record()),
                         s["benchmark"]["evaluation"].__setitem__("key", "so762-test/stft-heavy-v1")))
    assert "is no evaluation set of any benchmark track" in refusal(tree, run)


def test_shipped_weights_count_matches_the_recorded_parameters():
    """The real runs: the safetensors header's values equal model.parameters (no model needs a build)."""
    for model in ("demucs", "stft-mask-gru", "convtasnet"):
        r = load_run(RESULTS_DIR / SET / model / RUNS[model])
        f = RESULTS_DIR / r.summary["weights"]["file"]
        assert derived.safetensors_values(f) == r.summary["model"]["parameters"]


def test_the_scale_classes():
    assert [derived.scale_class(s) for s in (-0.05, 0.02, 0.099, 0.1, 0.85)] == \
        ["inverted", "quiet", "quiet", "ok", "ok"]
    assert np.isclose(derived.QUIET_SCALE, 0.1)
