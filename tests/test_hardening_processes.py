"""Issue 17, continued (tests/test_hardening.py has cases 1-4): run folders and prepared tracks are
locked and default run ids unique (5); worker pools die with their parent, tested by kill -9 (6);
`bench enhance` checks its output folder before the model runs and enhances long files in blocks with
bounded memory, equal to the whole-file output for a model with a known receptive field (7); prepare's
error headline counts unreadable files (8)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import bench.data.tracks as tracks_mod
from bench.adapters.base import Adapter
from bench.core.errors import BenchError
from bench.core.locks import LOCK_NAME, folder_lock
from bench.core.names import RUN_ID_RE
from bench.run.pipeline import new_run_id, run

from conftest import make_tiny_prepared, make_vctk_corpus, track_spec
from test_hardening import ENV, PY, _found, _opts


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory):
    return make_tiny_prepared(tmp_path_factory.mktemp("processes"), "tiny-hard", duration=0.6)


# ---------------------------------------------------------------------------------------------
# 5. locks and run ids
def _holder(target: Path, kind: str = "folder") -> subprocess.Popen:
    """Another process holding the lock of `target` until killed."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom bench.core.locks import folder_lock\n"
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
    for folder in (tmp_path / "results" / "tiny-hard" / "stft-v1" / "tiny-conv" / "same",
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
    # a pool made by bench.core.workers, and a plain one (the control: its workers outlive the parent)
    "worker_pool": "from bench.core.workers import worker_pool as make\npool = make(2)\n",
    "plain": "from concurrent.futures import ProcessPoolExecutor as make\npool = make(2)\n",
    # the real pools of prepare, verify and scoring, their work made slow
    "prepare": textwrap.dedent("""
        import os, time, bench.data.prepare as P
        from conftest import make_vctk_corpus, track_spec
        from bench.data.tracks import Track
        from bench.protocol import Protocol
        corpus = make_vctk_corpus(Path(sys.argv[1]) / 'c', '0.92', ('p225', 'p226', 'p227'), 2, duration=0.2)
        def _prepare_one(job):
            os.write(1, b'busy\\n')   # one write: two workers' lines never interleave
            time.sleep(120)
        P._prepare_one = _prepare_one
        P.prepare(Track(track_spec('t')), Protocol.load(), corpus, Path(sys.argv[1]) / 'p', jobs=2)
    """),
    "verify": textwrap.dedent("""
        import os, time, bench.data.verify as V
        from conftest import make_tiny_prepared
        pt = make_tiny_prepared(Path(sys.argv[1]), 't', 0.2)
        def _check(args):
            os.write(1, b'busy\\n')   # one write: two workers' lines never interleave
            time.sleep(120)
        V._check = _check
        V.verify_prepared(pt, jobs=2)
    """),
    "score": textwrap.dedent("""
        import os, time, bench.scoring.score as S
        from conftest import make_tiny_prepared
        from bench.adapters.base import get_adapter
        pt = make_tiny_prepared(Path(sys.argv[1]), 't', 0.2)
        def _score_one(args):
            os.write(1, b'busy\\n')   # one write: two workers' lines never interleave
            time.sleep(120)
        S.metric_row = _score_one
        f = get_adapter('noisy')
        from bench.scoring.suite import Evaluation
        S.score(f, f.adapter.build(), Evaluation('main', pt), Path(sys.argv[1]) / 'r', run_id='r', config={},
                budget={}, speed={}, weights=None, training=None, ship_outputs=False, jobs=2, metrics=('snr',))
    """),
}


@pytest.mark.parametrize("kind", list(POOL_PARENT))
def test_worker_pools_die_with_their_parent(tmp_path, kind):
    code = "import sys\nfrom pathlib import Path\n" + POOL_PARENT[kind]
    if kind in ("worker_pool", "plain"):
        code += ("import time\nfuts = [pool.submit(time.sleep, 120) for _ in range(2)]\n"
                 "print('busy', flush=True)\ntime.sleep(120)\n")
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
    from bench.run.enhance import enhance_blocks

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
    from bench.run.enhance import enhance_array

    x = np.random.default_rng(1).standard_normal((1, 48000 * 5)).astype(np.float32) * 0.1
    a, model = ConvAdapter(), ConvNet()
    whole = enhance_array(a, model, x, 48000, block_seconds=0)
    blocks = enhance_array(a, model, x, 48000, block_seconds=1.0, context_seconds=0.05)
    assert blocks.shape == whole.shape == x.shape
    assert np.abs(blocks - whole).max() < 1e-6


def _enhance(capsys, *args):
    from bench.cli.main import main

    rc = main(["enhance", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def test_enhance_checks_the_output_folder_before_the_model(tmp_path, capsys, monkeypatch):
    import bench.run.enhance as E

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
    from bench.cli.main import main
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
