"""Tests of the noising protocol (bench/protocol): spec identity, determinism, each manipulation,
calibration on real speech, and the golden reference outputs (tests/golden/)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.core.audio import load_16k, sha256_pcm16, to_pcm16
from bench.core.workers import worker_pool
from bench.core.errors import BenchError
from bench.protocol import (DEFAULT_PROTOCOL, FROZEN_STREAM, SPEC_DIR, Protocol, available_protocols,
                            canonical_json)
from bench.protocol import manipulations as M
from bench.protocol.manipulations import MANIPULATIONS, Context

from conftest import speech_like

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"

#: SHA-256 of the canonical JSON of stft-v1. It must never change: any edit of stft-v1.json (a
#: parameter, the seeding, even the description) needs a new file stft-v2.json instead.
STFT_V1_SHA256 = "ca581922cd91536c5aabafc3f679041b9ef555c8356709366838e86b3c9a7f86"

# short real test-speaker utterances of vctk-mini (16 kHz files)
ORDER_UTTS = ["p232_043", "p257_054", "p232_170", "p232_052"]
CALIB_UTTS = ["p232_010", "p257_418", "p232_052", "p257_054"]


@pytest.fixture(scope="module")
def proto() -> Protocol:
    return Protocol.load(DEFAULT_PROTOCOL)


@pytest.fixture(scope="module")
def synth() -> np.ndarray:
    """1 s of speech-like audio at 16 kHz (float32)."""
    return speech_like(16000, 16000, seed=7).astype(np.float32)


def real_path(corpus: Path, utt: str) -> Path:
    return corpus / "wav48" / utt.split("_")[0] / f"{utt}.flac"


# ---------------------------------------------------------------------------------------------
# spec identity
def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    else:
        yield path, obj


def _perturbed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.01 + 1e-3
    if isinstance(value, str):
        return value + "x"
    return 0 if value is None else None


def _set(spec, path, value):
    obj = spec
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def test_spec_hash_is_pinned_and_stable(proto):
    assert proto.name == "stft-v1" and proto.version == 1 and proto.sample_rate == 16000
    assert proto.sha256 == STFT_V1_SHA256, (
        "stft-v1.json changed: a changed protocol spec changes every noisy file and every score; "
        "restore it and put the change in a new version (stft-v2.json)")
    raw = json.loads((SPEC_DIR / "stft-v1.json").read_text())
    assert hashlib.sha256(canonical_json(raw)).hexdigest() == proto.sha256
    # key order and whitespace do not matter, only content
    shuffled = json.loads(json.dumps(raw, sort_keys=True, indent=7))
    shuffled = dict(reversed(list(shuffled.items())))
    assert Protocol.from_spec(shuffled).sha256 == proto.sha256
    assert Protocol.from_spec(copy.deepcopy(raw)).sha256 == proto.sha256


def test_spec_hash_changes_with_every_parameter(proto):
    seen = {proto.sha256}
    leaves = list(_leaves(proto.spec))
    assert len(leaves) > 30
    for path, value in leaves:
        spec = copy.deepcopy(proto.spec)
        _set(spec, path, _perturbed(value))
        digest = hashlib.sha256(canonical_json(spec)).hexdigest()
        assert digest not in seen, f"changing {path} did not change the spec hash"
        seen.add(digest)
        if path[0] == "manipulations" and path[-1] != "op":
            assert Protocol.from_spec(spec).sha256 == digest
    assert proto.spec == Protocol.load().spec  # nothing above mutated the cached spec


def test_load_by_name_and_record(proto):
    assert DEFAULT_PROTOCOL in available_protocols()
    assert Protocol.load("stft-v1") is proto  # cached
    rec = proto.record()
    assert rec == {"name": "stft-v1", "id": "stft", "version": 1, "sha256": STFT_V1_SHA256, "global_seed": 1234}
    with pytest.raises(BenchError, match="unknown protocol 'stft-v99'") as ei:
        Protocol.load("stft-v99")
    assert "stft-v1" in str(ei.value)  # the hint lists what exists


def test_unknown_op_is_rejected(proto):
    spec = copy.deepcopy(proto.spec)
    spec["manipulations"].append({"op": "reverse_time", "prob": 1.0})
    with pytest.raises(BenchError, match=r"manipulation 6 has unknown op 'reverse_time'.*zero_random"):
        Protocol.from_spec(spec)
    spec["manipulations"][-1] = {"prob": 1.0}
    with pytest.raises(BenchError, match="unknown op None"):
        Protocol.from_spec(spec)


@pytest.mark.parametrize("field", ["name", "id", "version", "sample_rate", "stft", "seeding", "manipulations", "output"])
def test_missing_field_is_rejected(proto, field):
    spec = copy.deepcopy(proto.spec)
    del spec[field]
    with pytest.raises(BenchError, match=f"missing the field '{field}'"):
        Protocol.from_spec(spec)


def test_name_must_match_id_and_version(proto):
    spec = copy.deepcopy(proto.spec)
    spec["version"] = 2
    with pytest.raises(BenchError, match="must be '<id>-v<version>'"):
        Protocol.from_spec(spec)


def test_missing_or_unknown_manipulation_parameter_is_rejected(proto):
    """There are no defaults: a spec that omits or misspells a parameter fails when loaded, not mid-prepare."""
    spec = copy.deepcopy(proto.spec)
    del spec["manipulations"][1]["prob"]
    with pytest.raises(BenchError, match=r"zero_random.*missing.*prob"):
        Protocol.from_spec(spec)
    spec = copy.deepcopy(proto.spec)
    spec["manipulations"][5]["snr"] = [1, 2]
    with pytest.raises(BenchError, match=r"add_floor.*unknown.*snr"):
        Protocol.from_spec(spec)


# ---------------------------------------------------------------------------------------------
# apply: shape, determinism
@pytest.mark.parametrize("n", [257, 1000, 4097, 16001])
def test_output_length_equals_input_length(proto, n):
    x = speech_like(n, 16000, seed=n).astype(np.float32)
    y = proto.apply(x, f"u{n}")
    assert y.shape == (n,) and y.dtype == np.float32
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0


def test_too_short_or_not_mono_is_an_error(proto):
    with pytest.raises(BenchError, match="has 256 samples; needs more than 256"):
        proto.apply(np.zeros(256, np.float32), "short")
    with pytest.raises(BenchError, match=r"expected one mono utterance.*\(2, 1000\)"):
        proto.apply(np.zeros((2, 1000), np.float32), "stereo")


def test_output_is_clipped_to_full_scale(proto):
    x = speech_like(8000, 16000, seed=3, peak=1.0).astype(np.float32)
    y = proto.apply(x, "loud")
    assert np.max(np.abs(y)) <= 1.0


def test_same_key_is_bit_identical(proto, synth):
    a = proto.apply(synth, "p232_001")
    b = proto.apply(synth.copy(), "p232_001")
    c = Protocol.from_spec(copy.deepcopy(proto.spec)).apply(synth, "p232_001", stream=FROZEN_STREAM, seed=1234)
    assert a.tobytes() == b.tobytes() == c.tobytes()
    # float64 input gives the same result as float32 input of the same values
    assert proto.apply(synth.astype(np.float64), "p232_001").tobytes() == a.tobytes()


@pytest.mark.parametrize("kw", [{"utt_id": "p232_002"}, {"seed": 1235}, {"stream": "train-epoch-0"}])
def test_different_key_gives_different_noise(proto, synth, kw):
    base = proto.apply(synth, "p232_001")
    args = {"utt_id": "p232_001", **kw}
    other = proto.apply(synth, args.pop("utt_id"), **args)
    differ = np.mean(to_pcm16(base) != to_pcm16(other))
    assert differ > 0.5, f"{kw}: only {differ:.1%} of samples differ"
    # similar level of degradation though (same protocol)
    e_base = np.mean((base - synth) ** 2)
    e_other = np.mean((other - synth) ** 2)
    assert 0.2 < e_other / e_base < 5


def test_generators_are_independent_per_step_and_key(proto):
    gens = proto.generators("p232_001")
    assert len(gens) == len(proto.spec["manipulations"])
    draws = [g.random(4).tolist() for g in gens]
    assert len({tuple(d) for d in draws}) == len(draws)
    # a step's randomness does not depend on the other steps' parameters
    spec = copy.deepcopy(proto.spec)
    spec["manipulations"][5]["prob"] = 0.5
    draws2 = [g.random(4).tolist() for g in Protocol.from_spec(spec).generators("p232_001")]
    assert draws2 == draws
    assert [g.random(4).tolist() for g in proto.generators("p232_001", seed=1)] != draws


def test_independent_of_torch_thread_count(proto):
    torch = pytest.importorskip("torch")
    x = speech_like(48000, 16000, seed=11).astype(np.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = proto.apply(x, "p257_001")
        torch.set_num_threads(max(2, before))
        many = proto.apply(x, "p257_001")
    finally:
        torch.set_num_threads(before)
    assert one.tobytes() == many.tobytes()


def _noisy_of_file(args):
    """Worker: the noisy version of one real file (runs in a fresh process pool)."""
    path, utt = args
    return utt, Protocol.load(DEFAULT_PROTOCOL).apply(load_16k(path), utt)


def _run_pool(items, workers):
    with worker_pool(workers) as ex:   # the benchmark's pools: one torch thread per worker
        return dict(ex.map(_noisy_of_file, items))


def test_independent_of_order_and_worker_count(proto, vctk_mini):
    items = [(str(real_path(vctk_mini, u)), u) for u in ORDER_UTTS]
    one = _run_pool(items, 1)
    two = _run_pool(items, 2)
    rev = _run_pool(items[::-1], 2)
    inproc = {u: proto.apply(load_16k(p), u) for p, u in items}
    for u in ORDER_UTTS:
        assert one[u].tobytes() == two[u].tobytes() == rev[u].tobytes() == inproc[u].tobytes(), u


def test_noisy_input_quality_is_in_the_calibrated_band(proto, vctk_mini):
    """stft-v1 was calibrated to PESQ-WB 1.64 / STOI 0.89 (mean over the 30 vctk-mini test utterances)."""
    pesq = pytest.importorskip("pesq").pesq
    stoi = pytest.importorskip("pystoi").stoi
    scores = []
    for u in CALIB_UTTS:
        x = load_16k(real_path(vctk_mini, u))
        y = proto.apply(x, u)
        scores.append((pesq(16000, x, y, "wb"), stoi(x, y, 16000, extended=False)))
    p, s = np.mean(scores, axis=0)
    assert 1.2 <= p <= 2.4, f"mean noisy PESQ-WB {p:.2f} outside 1.2-2.4: {scores}"
    assert 0.80 <= s <= 0.95, f"mean noisy STOI {s:.3f} outside 0.80-0.95: {scores}"
    # degraded, but the same speech: every utterance is clearly below clean quality and intelligible
    assert all(q < 3.0 and i > 0.7 for q, i in scores), scores


# ---------------------------------------------------------------------------------------------
# the manipulations, one by one
CTX = Context(sample_rate=16000, n_fft=512, hop_length=128, clean_power=1.0)


def _X(frames=400, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((257, frames)) + 1j * rng.standard_normal((257, frames)))


def test_context_geometry():
    assert CTX.hz_per_bin == 31.25 and CTX.ms_per_frame == 8.0


def test_every_manipulation_is_pure_and_deterministic(proto):
    X = _X(100)
    for step in proto.spec["manipulations"]:
        op, params = MANIPULATIONS[step["op"]], {k: v for k, v in step.items() if k != "op"}
        before = X.copy()
        a = op(X, np.random.default_rng(5), CTX, **params)
        b = op(X, np.random.default_rng(5), CTX, **params)
        assert np.array_equal(X, before), f"{step['op']} modified its input"
        assert a.shape == X.shape and a.dtype == np.complex128
        assert np.array_equal(a, b), step["op"]


@pytest.mark.parametrize("prob", [0.0, 0.15, 0.5])
def test_zero_random_zeroes_the_expected_fraction(prob):
    X = _X()
    Y = M.zero_random(X, np.random.default_rng(1), CTX, prob=prob)
    zeroed = Y == 0
    assert abs(zeroed.mean() - prob) < 0.01
    assert np.array_equal(Y[~zeroed], X[~zeroed])


def test_zero_strongest_only_touches_the_top_coefficients():
    X = _X()
    mag = np.abs(X)
    thr = np.quantile(mag, 0.9)
    top = mag >= thr
    Y = M.zero_strongest(X, np.random.default_rng(2), CTX, top_fraction=0.1, prob=1.0)
    assert np.array_equal(Y == 0, top)  # prob 1: exactly the top 10 %
    assert abs(top.mean() - 0.1) < 0.001
    Y = M.zero_strongest(X, np.random.default_rng(2), CTX, top_fraction=0.1, prob=0.35)
    zeroed = Y == 0
    assert not np.any(zeroed & ~top), "zeroed a coefficient below the quantile"
    assert abs(zeroed[top].mean() - 0.35) < 0.03
    assert np.array_equal(Y[~zeroed], X[~zeroed])
    # already-zero coefficients are never counted as "strongest"
    Z = np.zeros((257, 50), complex)
    assert np.array_equal(M.zero_strongest(Z, np.random.default_rng(0), CTX, top_fraction=0.1, prob=1.0), Z)


def test_zero_bands_zeroes_rectangles():
    X = _X(500)
    params = dict(rate_per_second=2.0, width_hz=[500, 500], duration_ms=[96, 96], freq_range_hz=[1000, 4000])
    lam = params["rate_per_second"] * 500 * CTX.hop_length / CTX.sample_rate
    for seed in range(50):
        count = int(np.random.default_rng(seed).poisson(lam))  # the op's first draw
        if count != 1:
            continue
        Y = M.zero_bands(X, np.random.default_rng(seed), CTX, **params)
        fz, tz = np.nonzero(Y == 0)
        f0, f1, t0, t1 = fz.min(), fz.max() + 1, tz.min(), tz.max() + 1
        assert (f1 - f0, t1 - t0) == (16, 12)  # 500 Hz / 31.25 Hz, 96 ms / 8 ms
        assert np.all(Y[f0:f1, t0:t1] == 0) and len(fz) == 16 * 12  # one full rectangle, nothing else
        assert 1000 / 31.25 <= f0 and f1 <= 4000 / 31.25 + 1
        untouched = np.ones(X.shape, bool)
        untouched[f0:f1, t0:t1] = False
        assert np.array_equal(Y[untouched], X[untouched])
        break
    else:
        pytest.fail("no seed with exactly one band")
    # rate 0: nothing; the count is Poisson with mean rate x duration
    assert np.array_equal(M.zero_bands(X, np.random.default_rng(0), CTX, **{**params, "rate_per_second": 0.0}), X)
    counts = [np.random.default_rng(s).poisson(lam) for s in range(400)]
    assert abs(np.mean(counts) - lam) < 0.5  # lam = 2 per second x 4 s


def test_zero_frames_zeroes_whole_frames():
    X = _X(5000)
    Y = M.zero_frames(X, np.random.default_rng(3), CTX, prob=0.3)
    cols = np.all(Y == 0, axis=0)
    assert abs(cols.mean() - 0.3) < 0.025
    assert np.array_equal(Y[:, ~cols], X[:, ~cols])


def test_scale_random_gains_are_in_range():
    X = _X()
    Y = M.scale_random(X, np.random.default_rng(4), CTX, prob=0.2, gain_db=[-12.0, 6.0])
    changed = Y != X
    assert abs(changed.mean() - 0.2) < 0.01
    gain_db = 20 * np.log10(np.abs(Y[changed]) / np.abs(X[changed]))
    assert gain_db.min() >= -12.0 - 1e-9 and gain_db.max() <= 6.0 + 1e-9
    assert abs(gain_db.mean() - (-3.0)) < 0.2  # uniform in dB
    assert np.allclose(np.angle(Y[changed]), np.angle(X[changed]))  # phase kept


def test_add_floor_adds_power_at_the_expected_level():
    Z = np.zeros((257, 2000), complex)
    Y = M.add_floor(Z, np.random.default_rng(6), CTX, prob=1.0, snr_db=[20.0, 20.0],
                    tilt_db_per_octave=[0.0, 0.0], reference_hz=1000.0)
    power = np.abs(Y) ** 2
    assert abs(10 * np.log10(power.mean()) - (-20.0)) < 0.1  # clean power 1 (0 dB) minus 20 dB SNR
    assert abs(np.mean(Y / np.abs(Y))) < 0.01  # uniform phase
    # white: same power in every band
    band = power.mean(axis=1)
    assert abs(10 * np.log10(band[20:60].mean() / band[150:250].mean())) < 0.3
    # the SNR scales with the utterance's clean power
    ctx2 = Context(16000, 512, 128, clean_power=100.0)
    Y2 = M.add_floor(Z, np.random.default_rng(6), ctx2, prob=1.0, snr_db=[20.0, 20.0],
                     tilt_db_per_octave=[0.0, 0.0], reference_hz=1000.0)
    assert np.allclose(np.abs(Y2) ** 2, 100 * power)


def test_add_floor_probability_and_tilt():
    Z = np.zeros((257, 2000), complex)
    Y = M.add_floor(Z, np.random.default_rng(7), CTX, prob=0.6, snr_db=[25.0, 25.0],
                    tilt_db_per_octave=[-3.0, -3.0], reference_hz=1000.0)
    assert abs(np.mean(Y != 0) - 0.6) < 0.01
    band = (np.abs(Y) ** 2).mean(axis=1) / 0.6
    # pink (-3 dB/octave): 4 kHz (bin 128) is 6 dB below 1 kHz (bin 32)
    ratio_db = 10 * np.log10(band[124:133].mean() / band[30:35].mean())
    assert abs(ratio_db - (-6.0)) < 0.5
    # overall mean power is still clean power minus the SNR
    assert abs(10 * np.log10(band.mean()) - (-25.0)) < 0.1
    # added on top of the existing coefficients, not replacing them
    X = _X(200)
    Y = M.add_floor(X, np.random.default_rng(7), CTX, prob=0.5, snr_db=[60.0, 60.0],
                    tilt_db_per_octave=[0.0, 0.0], reference_hz=1000.0)
    assert np.allclose(Y, X, atol=0.01) and np.mean(Y != X) > 0.45


def test_protocol_is_the_composition_of_its_steps(proto, synth):
    """apply == iSTFT(step_n(...step_1(STFT(x)))) with each step's own generator."""
    st = proto.spec["stft"]
    X = proto.stft(synth)
    ctx = Context(16000, st["n_fft"], st["hop_length"], float(np.mean(np.abs(X) ** 2)))
    for step, rng in zip(proto.spec["manipulations"], proto.generators("p232_009")):
        X = MANIPULATIONS[step["op"]](X, rng, ctx, **{k: v for k, v in step.items() if k != "op"})
    y = np.clip(proto.istft(X, len(synth)), -1, 1).astype(np.float32)
    assert y.tobytes() == proto.apply(synth, "p232_009").tobytes()
    # and the STFT alone is a perfect-reconstruction pair
    assert np.max(np.abs(proto.istft(proto.stft(synth), len(synth)) - synth)) < 1e-6


# ---------------------------------------------------------------------------------------------
# golden reference outputs
def golden_mismatch(got: np.ndarray, ref: np.ndarray) -> str | None:
    """None when `got` (int16) matches the golden `ref` (int16) within the tolerance, else why not.

    Tolerance: at most 2 LSB anywhere and SNR vs the golden > 60 dB. Allows float rounding differences
    between platforms/FFT backends; any parameter change of the protocol is far outside it.
    """
    if got.shape != ref.shape:
        return f"length {got.shape} != golden {ref.shape}"
    diff = got.astype(np.int64) - ref.astype(np.int64)
    max_lsb = int(np.max(np.abs(diff)))
    err = float(np.sum(diff.astype(np.float64) ** 2))
    snr = np.inf if err == 0 else 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / err)
    if max_lsb > 2 or snr <= 60:
        return f"max abs difference {max_lsb} LSB (allowed 2), SNR vs golden {snr:.1f} dB (needs > 60)"
    return None


def golden_dirs() -> list[Path]:
    return sorted(p for p in GOLDEN_DIR.iterdir() if (p / "golden.json").is_file()) if GOLDEN_DIR.is_dir() else []


def _golden_inputs(meta: dict, corpus: Path):
    for item in meta["items"]:
        x = load_16k(corpus / item["source_path"])[: meta["crop_samples"]]
        assert sha256_pcm16(to_pcm16(x)) == item["input_sha256_pcm16"], (
            f"{item['utt_id']}: the golden's input audio changed (source file or resampler); "
            "check `bench data verify` first")
        ref, sr = sf.read(str(meta["_dir"] / item["file"]), dtype="int16")
        assert sr == meta["sample_rate"] and ref.shape == (meta["crop_samples"],)
        assert sha256_pcm16(ref) == item["output_sha256_pcm16"], f"{item['file']}: golden file damaged"
        yield item, x, ref


def _load_golden(d: Path) -> dict:
    meta = json.loads((d / "golden.json").read_text())
    meta["_dir"] = d
    return meta


def test_golden_files_exist_for_the_default_protocol():
    names = [d.name for d in golden_dirs()]
    assert DEFAULT_PROTOCOL in names, f"no golden outputs for {DEFAULT_PROTOCOL} in {GOLDEN_DIR}; run scripts/make_golden.py"
    meta = _load_golden(GOLDEN_DIR / DEFAULT_PROTOCOL)
    assert len(meta["items"]) == 3


@pytest.mark.parametrize("golden", golden_dirs(), ids=lambda d: d.name)
def test_golden_protocol_hash_is_unchanged(golden):
    meta = _load_golden(golden)
    proto = Protocol.load(meta["protocol"]["name"])
    assert proto.sha256 == meta["protocol"]["sha256"], (
        f"the spec of {proto.name} changed since its golden outputs were made "
        f"(sha256 {proto.sha256[:12]}... != golden {meta['protocol']['sha256'][:12]}...). "
        "A parameter change needs a protocol version bump: restore the spec and add a new version file "
        "(e.g. stft-v2.json) instead, then run scripts/make_golden.py --protocol <new name>.")


@pytest.mark.parametrize("golden", golden_dirs(), ids=lambda d: d.name)
def test_golden_outputs_are_reproduced(golden, vctk_mini):
    meta = _load_golden(golden)
    proto = Protocol.load(meta["protocol"]["name"])
    for item, x, ref in _golden_inputs(meta, vctk_mini):
        got = to_pcm16(proto.apply(x, item["utt_id"], stream=meta["stream"], seed=meta["seed"]))
        problem = golden_mismatch(got, ref)
        assert problem is None, f"{item['utt_id']}: output differs from {golden / item['file']}: {problem}"


#: Small changes the audio comparison alone catches on every golden file (max diff 8-1700 LSB, SNR 20-58 dB).
#: Not every change is audible on 1.5 s: zero_frames prob 0.02 -> 0.021 flips no frame there (no draw falls in
#: [0.02, 0.021)) -- the stored-sha256 check of test_golden_protocol_hash_is_unchanged catches such changes.
PERTURBATIONS = {
    "add_floor.snr_db+0.5dB": (5, "snr_db", [20.5, 32.5]),
    "zero_random.prob=0.16": (1, "prob", 0.16),
    "zero_strongest.top_fraction=0.101": (0, "top_fraction", 0.101),
    "scale_random.gain_db_max=6.1": (4, "gain_db", [-12.0, 6.1]),
}


@pytest.mark.parametrize("change", list(PERTURBATIONS), ids=list(PERTURBATIONS))
def test_golden_tolerance_catches_a_small_parameter_change(change, vctk_mini):
    """The golden tolerance is tight: a small change of one parameter fails the comparison."""
    meta = _load_golden(GOLDEN_DIR / DEFAULT_PROTOCOL)
    step, key, value = PERTURBATIONS[change]
    spec = copy.deepcopy(Protocol.load(DEFAULT_PROTOCOL).spec)
    assert key in spec["manipulations"][step]
    spec["manipulations"][step][key] = value
    changed = Protocol.from_spec(spec)
    assert changed.sha256 != meta["protocol"]["sha256"]
    problems = {}
    for item, x, ref in _golden_inputs(meta, vctk_mini):
        got = to_pcm16(changed.apply(x, item["utt_id"], stream=meta["stream"], seed=meta["seed"]))
        problems[item["utt_id"]] = golden_mismatch(got, ref)
    # the golden test fails when any file mismatches; these changes are caught on every file
    assert all(problems.values()), f"{change} would pass the golden comparison: {problems}"


def test_golden_mismatch_tolerance_itself():
    ref = to_pcm16(speech_like(4000, 16000, seed=1))
    assert golden_mismatch(ref.copy(), ref) is None
    off = ref.copy()
    off[::7] += 2
    assert golden_mismatch(off, ref) is None  # 2 LSB rounding noise passes
    off[98] += 1  # 98 is one of the +2 samples
    assert "3 LSB" in golden_mismatch(off, ref)
    assert "length" in golden_mismatch(ref[:-1], ref)
