"""The board's fast paths (issue 27) give the numbers of the straightforward ones: the bootstrap of many
columns at once, the rank agreement of all resamples at once, the manifest parsed once per content, and the
adapters' attributes read from their cache."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats as st

from bench.adapters.catalogue import FIELDS, cache_key, catalogue
from bench.data.manifest import Utterance, read_manifest, write_manifest
from bench.metrics import stats as S


def _counts_add_at(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """The resample counts as they were built before (np.add.at over the same draws)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    rows = max(1, S._CHUNK_ELEMENTS // n)
    out = np.zeros((n_resamples, n))
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        np.add.at(out, (np.arange(start, stop)[:, None], rng.integers(0, n, size=(stop - start, n))), 1.0)
    return out


def _one_by_one(x, n_resamples: int, seed: int, confidence: float = 0.95):
    """bootstrap_ci as it was: one matrix-vector product over the whole count matrix per column."""
    x = np.asarray(x, float)
    x = x[~np.isnan(x)]
    if x.size < 2:
        return (math.nan,) * 3 if x.size == 0 else (float(x[0]),) * 3
    means = _counts_add_at(x.size, n_resamples, seed) @ x / x.size
    lo, hi = np.quantile(means, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    mean = float(x.mean())
    return (mean, float(min(lo, mean)), float(max(hi, mean)))


@pytest.mark.parametrize("n", [2, 7, 30, 125, 301])
def test_bootstrap_of_many_columns_equals_one_by_one(n):
    rng = np.random.default_rng(n)
    cols = [np.round(rng.normal(size=n) * scale, 6) for scale in (0.01, 1.0, 40.0)]
    cols.append(np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)))   # another length after NaNs
    cols += [np.full(n, 0.25), np.full(n, np.nan), np.r_[3.5, np.full(n - 1, np.nan)]]
    got = S.bootstrap_cis(cols, n_resamples=3000, seed=4)
    for c, g in zip(cols, got):
        want = _one_by_one(c, 3000, 4)
        assert (np.isnan(want).all() and np.isnan(g).all()) or g == want   # bit for bit
        assert S.bootstrap_ci(c, n_resamples=3000, seed=4) == g or np.isnan(g).all()


def test_resample_counts_are_the_same_draws():
    for n in (3, 125, 70_000):   # the last one spans several chunks of draws
        assert np.array_equal(S._resample_counts(n, 200, 9), _counts_add_at(n, 200, 9))


def _rank_agreement_scipy(a, b, n_resamples, seed=0, confidence=0.95):
    """rank_agreement as it was: one scipy.stats.spearmanr per resample."""
    A, B = np.vstack(a), np.vstack(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        point = float(st.spearmanr(np.nanmean(A, 1), np.nanmean(B, 1)).statistic)
        rng, vals = np.random.default_rng(seed), []
        for _ in range(n_resamples):
            ia, ib = rng.integers(0, A.shape[1], A.shape[1]), rng.integers(0, B.shape[1], B.shape[1])
            r = float(st.spearmanr(np.nanmean(A[:, ia], 1), np.nanmean(B[:, ib], 1)).statistic)
            if math.isfinite(r):
                vals.append(r)
    lo, hi = np.quantile(vals, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return point, float(lo), float(hi)


@pytest.mark.parametrize("systems,na,nb,nan_share", [(3, 30, 80, 0.0), (12, 30, 125, 0.0), (7, 5, 4, 0.3)])
def test_rank_agreement_equals_scipy(systems, na, nb, nan_share):
    rng = np.random.default_rng(systems)
    a = [np.round(rng.normal(size=na) + 0.1 * i, 1) for i in range(systems)]   # rounded: ties in the means
    b = [np.where(rng.random(nb) < nan_share, np.nan, np.round(rng.normal(size=nb) + 0.05 * i, 1))
         for i in range(systems)]
    assert S.rank_agreement(a, b, n_resamples=400) == _rank_agreement_scipy(a, b, 400)


def test_spearman_rows_equals_scipy_with_ties_nan_and_constants():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 4, (300, 6)).astype(float), rng.normal(size=(300, 6))
    x[0], y[1, 2], y[2] = 2.0, np.nan, y[2, 0]   # constant, NaN, constant
    got = S.spearman_rows(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.array([st.spearmanr(x[i], y[i]).statistic for i in range(len(x))])
    assert np.isnan(got[:3]).all() and np.array_equal(got, want, equal_nan=True)


def _utts(speaker: str) -> list[Utterance]:
    return [Utterance(f"{speaker}_{i:03d}", speaker, "test", f"{speaker}/{i}.wav", 16000, 16000 + i, "ab" * 32)
            for i in range(3)]


def test_manifest_is_parsed_again_when_its_bytes_change(tmp_path):
    path = tmp_path / "m.csv"
    write_manifest(path, _utts("p1"))
    first = read_manifest(path)
    first.clear()   # the caller's list: the cached parse is not touched
    assert [u.utt_id for u in read_manifest(path)] == ["p1_000", "p1_001", "p1_002"]
    write_manifest(path, _utts("p2"))   # same size, other bytes, maybe the same mtime
    assert [u.speaker for u in read_manifest(path)] == ["p2"] * 3


ADAPTER = '''from bench.adapters import Adapter


class Tiny(Adapter):
    name = "tiny"
    description = "{desc}"
    trainable = True
    train_config = {{"lr": 1e-3}}
    presets = {{"quick": {{"model": {{}}, "train": {{"max_steps": 5}}}}}}
'''


def test_catalogue_reads_its_cache_and_a_changed_file_invalidates_it(tmp_path):
    root, cache = tmp_path / "repo", tmp_path / "cache"
    (root / "baselines").mkdir(parents=True)
    (root / "baselines" / "tiny.py").write_text(ADAPTER.format(desc="first"))
    fresh = catalogue(root, cache_dir=cache)
    t = fresh["tiny"]
    assert (t.kind, t.path, t.adapter.presets, t.adapter.train_config) == (
        "baseline", root / "baselines" / "tiny.py", {"quick": {"model": {}, "train": {"max_steps": 5}}}, {"lr": 1e-3})
    [made] = cache.glob("adapters-*.json")
    assert made.name == f"adapters-{cache_key(root)}.json"
    assert catalogue(root, cache_dir=cache) == fresh
    entries = json.loads(made.read_text())
    entries[0]["description"] = "from the cache"
    made.write_text(json.dumps(entries))
    assert catalogue(root, cache_dir=cache)["tiny"].adapter.description == "from the cache"
    assert catalogue(root, cache=False, cache_dir=cache)["tiny"].adapter.description == "first"
    (root / "baselines" / "tiny.py").write_text(ADAPTER.format(desc="second"))   # another key: not that cache
    assert catalogue(root, cache_dir=cache)["tiny"].adapter.description != "from the cache"
    assert [p.name for p in cache.glob("adapters-*.json")] == [f"adapters-{cache_key(root)}.json"]
    assert set(FIELDS) <= set(entries[0])


def test_catalogue_keeps_a_models_sizes_and_reads_them_back(tmp_path):
    """A model with buffers (SepFormer's positional encoding): counted once by building it, then read from
    sizes-<key>.json (a forged entry comes back, so nothing was built), with the catalogue's key."""
    from bench import REPO_ROOT

    sep = catalogue(REPO_ROOT, cache_dir=tmp_path)["sepformer"].adapter
    config = {**sep.config, **sep.presets["quick"]["model"]}
    params, values = sep.sizes(config)
    assert 0 < params < values   # the buffers are state-dict values, not parameters
    [kept] = tmp_path.glob("sizes-*.json")
    assert kept.name == f"sizes-{cache_key(REPO_ROOT)}.json"
    entries = json.loads(kept.read_text())
    assert list(entries.values()) == [[params, values]]
    kept.write_text(json.dumps({k: [1, 2] for k in entries}))
    assert sep.sizes(config) == (1, 2)
    assert catalogue(REPO_ROOT, cache=False)["sepformer"].adapter.sizes_file is None


def test_the_board_with_its_caches_warm_imports_no_torch():
    """`bench leaderboard --check` stays light: the second collect of the committed results (adapter and
    size caches written by the first) imports neither torch nor a model library."""
    import subprocess
    import sys

    from bench import REPO_ROOT

    code = ("import sys; from bench.board.rows import collect; collect(); "
            "print(sorted(m for m in ('torch', 'speechbrain', 'asteroid') if m in sys.modules))")
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def _copy_of_one_metric_at_a_time(run, other, tol):
    """derived.copy_of as it was: the hashes, then each shared metric's sorted values in turn."""
    from bench.verify.derived import COPY_TOL_FACTOR, _score_columns

    if "output_sha256" in run.per_utterance and "output_sha256" in other.per_utterance:
        mine = set(run.per_utterance["output_sha256"].dropna())
        if mine and 2 * len(mine & set(other.per_utterance["output_sha256"].dropna())) >= len(mine):
            return "output_sha256"
    same = []
    for m in [m for m in _score_columns(run) if m in _score_columns(other)]:
        a, b = (np.sort(r.per_utterance[m].to_numpy(float)) for r in (run, other))
        if len(a) != len(b) or np.isnan(a).all():
            continue
        if not (np.array_equal(np.isnan(a), np.isnan(b))
                and np.nanmax(np.abs(a - b)) <= COPY_TOL_FACTOR * tol.get(m, tol["default"])):
            return None
        same.append(m)
    return "per-utterance scores" if same else None


def test_copy_check_of_all_metrics_at_once_equals_one_metric_at_a_time():
    """On pairs of committed runs and on edited copies (a metric moved just within and just beyond its
    tolerance, a NaN moved, a column dropped or all NaN, a shorter run, shuffled rows, hashes removed)."""
    from dataclasses import replace

    from bench.scoring.results import RESULTS_DIR, load_run
    from bench.verify.derived import COPY_TOL_FACTOR, copy_of
    from bench.verify.tolerances import RESCORE_TOL

    ranked = RESULTS_DIR / "vctk-mini" / "stft-v1"
    runs = [load_run(d) for m in ("spectral-subtraction", "demucs", "noisy") for d in sorted((ranked / m).iterdir())[:2]
            if (d / "summary.json").is_file()]
    base = runs[0]
    pu = base.per_utterance
    step = COPY_TOL_FACTOR * RESCORE_TOL["default"]
    no_hash = pu.drop(columns=["output_sha256"], errors="ignore")
    edits = [no_hash, no_hash.sample(frac=1.0, random_state=0), no_hash.iloc[:-1],
             no_hash.assign(pesq_wb=no_hash["pesq_wb"] + 0.9 * step), no_hash.assign(pesq_wb=no_hash["pesq_wb"] + 1.1 * step),
             no_hash.assign(stoi=np.nan), no_hash.drop(columns=["si_sdr"]),
             no_hash.assign(extra=1.0), no_hash.assign(pesq_wb=no_hash["pesq_wb"].where(no_hash.index != 3))]
    runs += [replace(base, per_utterance=df) for df in edits]
    pairs = 0
    for a in runs:
        for b in runs:
            if a is not b:
                assert copy_of(a, b, RESCORE_TOL) == _copy_of_one_metric_at_a_time(a, b, RESCORE_TOL), (a.path, b.path)
                pairs += 1
    assert pairs > 100
    verdicts = {copy_of(replace(base, per_utterance=df), base, RESCORE_TOL) for df in edits}
    assert verdicts == {None, "per-utterance scores"}


def test_a_derived_summary_is_trusted_only_for_the_bytes_it_was_derived_from(tmp_path):
    """`Derivations`: a folder's schema check and recomputation are skipped only where an entry for these
    exact bytes of summary.json and per_utterance.csv exists; a forged statistic is refused until an entry
    for the forged bytes is planted, and ``derivations=None`` (``--no-cache``) always derives."""
    import shutil

    from bench.core.errors import ResultsError
    from bench.scoring.derivations import Derivations
    from bench.scoring.results import RESULTS_DIR, dump_json, load_run

    src = next((RESULTS_DIR / "vctk-mini" / "stft-v1" / "noisy").iterdir())
    run = tmp_path / "r" / "vctk-mini" / "stft-v1" / "noisy" / src.name
    shutil.copytree(src, run)
    cache = Derivations(tmp_path / "cache")
    assert load_run(run, cache).summary == load_run(run).summary
    assert len(list(cache.folder.iterdir())) == 1
    summary = json.loads((run / "summary.json").read_text())
    summary["metrics"]["pesq_wb"]["mean"] += 0.5
    (run / "summary.json").write_bytes(dump_json(summary))
    for derivations in (cache, None):
        with pytest.raises(ResultsError, match="mean pesq_wb"):
            load_run(run, derivations)
    planted = cache.entry(run / "summary.json", summary)
    planted.touch()   # what a cache entry does: these bytes are not derived again
    assert load_run(run, cache).summary["metrics"]["pesq_wb"] == summary["metrics"]["pesq_wb"]
    with pytest.raises(ResultsError, match="mean pesq_wb"):
        load_run(run)
    (run / "per_utterance.csv").write_bytes((run / "per_utterance.csv").read_bytes() + b"\n")
    assert cache.entry(run / "summary.json", summary) != planted   # another CSV: another entry
    (run / "elsewhere.csv").symlink_to(run / "per_utterance.csv")
    for name in ("elsewhere.csv", "/dev/zero", "../noisy", None):   # never read: load_run refuses them
        assert cache.entry(run / "summary.json", {"files": {"per_utterance": name}}) is None


def test_the_board_from_its_caches_is_the_board_without_them():
    """`bench leaderboard --check`'s caches (adapters, sizes, derived summaries) change nothing: the
    committed results render to the same leaderboard with and without them."""
    from bench.board import leaderboard
    from bench.board.rows import collect

    assert leaderboard.render(board=collect(cache=True)) == leaderboard.render(board=collect(cache=False))


def test_git_answers_are_kept_only_for_what_git_has(tmp_path):
    """`commit_marks` asks git once per process for what it found; a commit it missed is asked again, so
    one made since is traced."""
    import subprocess

    from bench.verify.derived import commit_marks

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    (tmp_path / "model.py").write_text("x = 1\n")
    git("add", "model.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    first = git("rev-parse", "HEAD").strip()
    later = git("cat-file", "commit", first).replace("one", "two")

    def hash_commit(*write):
        return subprocess.run(["git", "-C", str(tmp_path), "hash-object", "-t", "commit", "--stdin", *write],
                              input=later, capture_output=True, text=True, check=True).stdout.strip()

    second = hash_commit()   # its id; not stored yet
    items = [(first, tmp_path / "model.py"), (second, tmp_path / "model.py")]
    for _ in range(2):
        assert commit_marks(items, tmp_path) == [None, f"commit {second[:12]} is not in this repository"]
    assert hash_commit("-w") == second
    assert commit_marks(items, tmp_path) == [None, None]


def test_verify_fast_from_its_cache_is_verify_without_it(tmp_path, monkeypatch):
    """`bench verify --fast` trusts a derived summary only for the bytes it derived: a forged statistic with
    a planted entry (in a cache of its own) passes from the cache and fails with --no-cache."""
    import shutil

    monkeypatch.setattr("bench.core.files.CACHE_DIR", tmp_path / "cache")

    from bench.cli.main import main
    from bench.scoring.results import RESULTS_DIR, dump_json

    src = next((RESULTS_DIR / "vctk-mini" / "stft-v1" / "noisy").iterdir())
    run = tmp_path / "results" / "vctk-mini" / "stft-v1" / "noisy" / src.name
    shutil.copytree(src, run)
    cmd = ["verify", "--fast", "--results-dir", str(tmp_path / "results"), str(run)]
    assert main(cmd) == 0 and main([*cmd, "--no-cache"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    summary["metrics"]["stoi"]["ci_high"] += 0.01
    (run / "summary.json").write_bytes(dump_json(summary))
    assert main(cmd) == 1
    from bench.scoring.derivations import Derivations

    Derivations().entry(run / "summary.json", summary).touch()
    assert main(cmd) == 0 and main([*cmd, "--no-cache"]) == 1
    assert [p.parent for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [Derivations().folder] * 2
