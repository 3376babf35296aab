"""`bench enhance` of a file of any length in bounded memory (issue 26): offline enhancement in blocks reads
and writes the file block by block (`bench.run.enhance.enhance_file`), bit-identical at 16 kHz to enhancing
the whole array in the same blocks, and its peak memory does not grow with the file."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from bench.adapters.base import get_adapter
from bench.core.audio import to_pcm16
from bench.run.enhance import enhance_array, enhance_file


def _noise_file(path, seconds: float, sr: int = 16000, channels: int = 1):
    x = 0.1 * np.random.default_rng(0).standard_normal((int(seconds * sr), channels)).astype(np.float32)
    sf.write(str(path), x, sr, subtype="PCM_16")
    return sf.read(str(path), dtype="float32", always_2d=True)[0].T


@pytest.mark.parametrize("sr, channels", [(16000, 1), (16000, 2)])
def test_enhance_file_equals_the_whole_array_in_blocks(tmp_path, sr, channels):
    a = get_adapter("spectral-subtraction").adapter
    model = a.build(**a.resolved_config()).eval()
    x = _noise_file(tmp_path / "in.wav", 7.3, sr, channels)
    want = to_pcm16(enhance_array(a, model, x, sr, block_seconds=1.0, context_seconds=0.5))
    ch, got_sr, n, peak = enhance_file(a, model, tmp_path / "in.wav", tmp_path / "out.wav", block_seconds=1.0,
                                       context_seconds=0.5)
    got, _ = sf.read(str(tmp_path / "out.wav"), dtype="int16", always_2d=True)
    assert (ch, got_sr, n) == (channels, sr, x.shape[1])
    assert np.array_equal(got.T, want)
    assert not list(tmp_path.glob(".*tmp"))   # written atomically


def test_enhance_file_at_another_rate_matches_within_a_few_lsb(tmp_path):
    a = get_adapter("spectral-subtraction").adapter
    model = a.build(**a.resolved_config()).eval()
    x = _noise_file(tmp_path / "in.wav", 5.0, 44100)
    want = to_pcm16(enhance_array(a, model, x, 44100, block_seconds=1.0, context_seconds=0.5)).astype(int)
    enhance_file(a, model, tmp_path / "in.wav", tmp_path / "out.wav", block_seconds=1.0, context_seconds=0.5)
    got = sf.read(str(tmp_path / "out.wav"), dtype="int16", always_2d=True)[0].T.astype(int)
    assert got.shape == want.shape and np.max(np.abs(got - want)) <= 4


_PEAK = """
import resource, sys
from pathlib import Path
from bench.adapters.base import get_adapter
from bench.run.enhance import enhance_file
a = get_adapter("spectral-subtraction").adapter
enhance_file(a, a.build(**a.resolved_config()).eval(), Path(sys.argv[1]), Path(sys.argv[2]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_file(tmp_path):
    """Peak RSS of enhancing 2 and 8 minutes (a fresh process each): the longer within 1.25x."""
    peaks = []
    for minutes in (2, 8):
        _noise_file(tmp_path / f"{minutes}.wav", 60 * minutes)
        r = subprocess.run([sys.executable, "-c", _PEAK, str(tmp_path / f"{minutes}.wav"), str(tmp_path / "o.wav")],
                           capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        peaks.append(int(r.stdout.split()[-1]))
    assert peaks[1] <= 1.25 * peaks[0], peaks
