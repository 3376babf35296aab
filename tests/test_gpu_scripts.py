"""scripts/gpu/pack_prepared.py: a prepared track packed as FLAC unpacks to the same PCM16 samples,
checked against the prepared manifests; a changed file is named."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from bench import REPO_ROOT
from conftest import make_tiny_prepared

SCRIPT = REPO_ROOT / "scripts" / "gpu" / "pack_prepared.py"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_tiny_prepared(tmp_path_factory.mktemp("pack"), "tiny-pack", duration=0.5).track_dir


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT)


def test_pack_unpack_round_trip_is_sample_exact(prepared, tmp_path):
    assert _run("pack", prepared, tmp_path / "flac").returncode == 0
    assert list((tmp_path / "flac").rglob("*.flac")) and not list((tmp_path / "flac").rglob("*.wav"))
    r = _run("unpack", tmp_path / "flac", tmp_path / "wav")
    assert r.returncode == 0 and "match their manifests" in r.stdout
    for src in prepared.rglob("*.wav"):
        a, sa = sf.read(src, dtype="int16")
        b, sb = sf.read(tmp_path / "wav" / src.relative_to(prepared), dtype="int16")
        assert sa == sb and np.array_equal(a, b)


def test_unpack_names_a_changed_file(prepared, tmp_path):
    _run("pack", prepared, tmp_path / "flac")
    victim = sorted((tmp_path / "flac").rglob("*.flac"))[0]
    data, sr = sf.read(victim, dtype="int16")
    data[0] = data[0] + 1 if data[0] < 32767 else data[0] - 1
    sf.write(victim, data, sr, subtype="PCM_16", format="FLAC")
    r = _run("unpack", tmp_path / "flac", tmp_path / "wav")
    assert r.returncode != 0 and victim.stem in r.stderr and "differ from the prepared manifest" in r.stderr
