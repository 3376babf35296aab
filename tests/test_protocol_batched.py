"""The batched torch protocol path (bench/protocol/batched.py) against the numpy float64 reference.

The two paths draw different random numbers, so they are compared statistically: for each
manipulation, the statistics that define it are measured on the output of both paths (same input,
same parameters, fixed seeds) and compared with a proper test:

- fractions (coefficients / frames zeroed or changed): two-proportion z-test, |z| < Z_MAX = 4.5
  (two-sided p = 7e-6 under equality);
- distributions of per-coefficient or per-item quantities (gains in dB, floor SNR, floor tilt,
  zeroed-area fraction): two-sample Kolmogorov-Smirnov, p > P_MIN = 1e-4; means of per-item
  quantities: Welch z-test, |z| < Z_MAX;
- the torch draws of zero_bands (count, width, duration): Poisson z-test of the count and chi-square
  goodness of fit of the width / duration in bins / frames against their exact distribution, p > P_MIN.

Seeds are fixed, so the tests are deterministic; the thresholds say how unlikely a false failure
would be over seeds. `test_a_mutated_parameter_fails_the_equivalence_test` checks that the tests have
power: changing one parameter of the torch path slightly (e.g. zero_strongest prob 0.35 -> 0.30) makes
them fail. The noisy-input PESQ-WB / STOI / SI-SDR of both paths on the real valid split are compared
in `test_valid_split_metrics_match_the_reference*`.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import pytest
import torch
from scipy import stats

from bench.core.audio import load_16k
from bench.data.tracks import load_archived
from bench.core.errors import BenchError
from bench.protocol import DEFAULT_PROTOCOL, Protocol
from bench.protocol import batched as TB
from bench.protocol.batched import BatchContext, BatchedProtocol, at_or_above_quantile, band_rectangles
from bench.protocol.manipulations import MANIPULATIONS, Context

from conftest import speech_like

Z_MAX = 4.5
P_MIN = 1e-4
SR, N_FFT, HOP = 16000, 512, 128
#: the torch path is tested on every device this machine has (CUDA too where present)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def proto() -> Protocol:
    return Protocol.load(DEFAULT_PROTOCOL)


def params_of(proto: Protocol, op: str) -> dict:
    step = next(s for s in proto.spec["manipulations"] if s["op"] == op)
    return {k: v for k, v in step.items() if k != "op"}


def z_two_proportions(k1: int, n1: int, k2: int, n2: int) -> float:
    p = (k1 + k2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return 0.0 if se == 0 else (k1 / n1 - k2 / n2) / se


def z_welch(a: np.ndarray, b: np.ndarray) -> float:
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return (a.mean() - b.mean()) / se


def gaussian_X(items: int, bins: int, frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((items, bins, frames)) + 1j * rng.standard_normal((items, bins, frames))


#: the two kinds of randomness of the torch path: one generator per batch, or one per item (the trainer's)
RNGS = ["batch", "item"]


def torch_rng(kind: str, device: str, seed: int, items: range):
    """A torch.Generator (kind "batch"), or the trainer's ItemGenerators for `items` of step 0 (kind "item")."""
    if kind == "batch":
        return torch.Generator(device).manual_seed(seed)
    return BatchedProtocol(Protocol.load(DEFAULT_PROTOCOL), device).item_generators(seed, 0, items)


def run_both(op: str, X: np.ndarray, ref_params: dict, torch_params: dict, *, clean_power=None, seed=0,
             chunk: int = 64, device: str = "cpu", rng: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """(numpy reference output, torch output) of manipulation `op` on each item of X (items, F, N)."""
    power = np.ones(len(X)) if clean_power is None else np.asarray(clean_power, dtype=np.float64)
    ref = np.stack([MANIPULATIONS[op](X[i], np.random.default_rng([seed, i]), Context(SR, N_FFT, HOP, power[i]),
                                      **ref_params) for i in range(len(X))])
    gen = torch.Generator(device).manual_seed(10_000 + seed)
    out = []
    for s in range(0, len(X), chunk):
        if rng == "item":
            gen = torch_rng("item", device, 10_000 + seed, range(s, min(s + chunk, len(X))))
        ctx = BatchContext(SR, N_FFT, HOP, torch.tensor(power[s:s + chunk], dtype=torch.float32, device=device))
        Xt = torch.from_numpy(X[s:s + chunk]).to(device=device, dtype=torch.complex64)
        out.append(getattr(TB, op)(Xt, gen, ctx, **torch_params).cpu().numpy())
    return ref, np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# per-manipulation equivalence: each check returns {statistic: (value, ok)}
def check_zero_strongest(ref_params: dict, torch_params: dict, device: str = "cpu", rng: str = "batch") -> dict:
    X = gaussian_X(8, 257, 400, seed=1)
    ref, out = run_both("zero_strongest", X, ref_params, torch_params, seed=1, device=device, rng=rng)
    mag = np.abs(X)
    top = mag >= np.quantile(mag.reshape(len(X), -1), 1 - ref_params["top_fraction"], axis=1)[:, None, None]
    z = z_two_proportions(int((out == 0)[top].sum()), int(top.sum()), int((ref == 0)[top].sum()), int(top.sum()))
    outside = int((out == 0)[~top].sum()) + int((ref == 0)[~top].sum())
    return {"z(zeroed among the top)": (z, abs(z) < Z_MAX), "zeroed outside the top": (outside, outside == 0)}


def check_zero_random(ref_params: dict, torch_params: dict, device: str = "cpu", rng: str = "batch") -> dict:
    X = gaussian_X(8, 257, 400, seed=2)
    ref, out = run_both("zero_random", X, ref_params, torch_params, seed=2, device=device, rng=rng)
    z = z_two_proportions(int((out == 0).sum()), out.size, int((ref == 0).sum()), ref.size)
    return {"z(zeroed fraction)": (z, abs(z) < Z_MAX)}


def check_zero_frames(ref_params: dict, torch_params: dict, device: str = "cpu", rng: str = "batch") -> dict:
    X = gaussian_X(16, 4, 6000, seed=3)  # the op acts on whole frames: few bins, many frames
    ref, out = run_both("zero_frames", X, ref_params, torch_params, seed=3, device=device, rng=rng)
    f_out, f_ref = np.all(out == 0, axis=1), np.all(ref == 0, axis=1)
    z = z_two_proportions(int(f_out.sum()), f_out.size, int(f_ref.sum()), f_ref.size)
    partial = int(((out == 0).any(axis=1) & ~f_out).sum())
    return {"z(zeroed frames)": (z, abs(z) < Z_MAX), "partly zeroed frames": (partial, partial == 0)}


def check_scale_random(ref_params: dict, torch_params: dict, device: str = "cpu", rng: str = "batch") -> dict:
    X = gaussian_X(8, 257, 200, seed=4)
    ref, out = run_both("scale_random", X, ref_params, torch_params, seed=4, device=device, rng=rng)
    Xc = X.astype(np.complex64)
    ch_out, ch_ref = out != Xc, ref != X
    z = z_two_proportions(int(ch_out.sum()), out.size, int(ch_ref.sum()), ref.size)
    g_out = 20 * np.log10(np.abs(out[ch_out]) / np.abs(Xc[ch_out]))
    g_ref = 20 * np.log10(np.abs(ref[ch_ref]) / np.abs(X[ch_ref]))
    ks = stats.ks_2samp(g_out, g_ref).pvalue
    lo, hi = ref_params["gain_db"]
    in_range = bool(g_out.min() >= lo - 1e-3 and g_out.max() <= hi + 1e-3)
    phase = float(np.max(np.abs(np.angle(out[ch_out] / Xc[ch_out]))))
    return {"z(changed fraction)": (z, abs(z) < Z_MAX), "KS p(gain dB)": (ks, ks > P_MIN),
            "gains within the spec range": (in_range, in_range), "max phase change": (phase, phase < 1e-4)}


def _floor_estimates(Y: np.ndarray, power: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: fraction of coefficients hit, SNR (dB, vs the item's clean power), tilt (dB/octave, by
    least squares of the per-bin power in dB on log2 frequency)."""
    P = np.abs(Y.astype(np.complex128)) ** 2
    hit = P > 0
    frac = hit.mean(axis=(1, 2))
    snr = 10 * np.log10(power / (P.sum(axis=(1, 2)) / hit.sum(axis=(1, 2))))
    octaves = np.log2(np.arange(1, P.shape[1]) * SR / N_FFT / 1000.0)
    band_db = 10 * np.log10(P[:, 1:].sum(axis=2) / hit[:, 1:].sum(axis=2))
    tilt = np.polyfit(octaves, band_db.T, 1)[0]
    return frac, snr, tilt


def check_add_floor(ref_params: dict, torch_params: dict, device: str = "cpu", rng: str = "batch") -> dict:
    items = 800
    power = 10.0 ** np.random.default_rng(5).uniform(-3, 1, items)  # the SNR is relative to each item's power
    Z = np.zeros((items, 257, 50), complex)
    ref, out = run_both("add_floor", Z, ref_params, torch_params, clean_power=power, seed=5, chunk=100,
                        device=device, rng=rng)
    (fo, so, to), (fr, sr, tr) = _floor_estimates(out, power), _floor_estimates(ref, power)
    z = z_two_proportions(int(round(fo.sum() * Z[0].size)), Z.size, int(round(fr.sum() * Z[0].size)), Z.size)
    ks_snr, ks_tilt = stats.ks_2samp(so, sr).pvalue, stats.ks_2samp(to, tr).pvalue
    phase = np.angle(out[out != 0])
    ks_phase = stats.kstest(phase[:50_000], "uniform", args=(-np.pi, 2 * np.pi)).pvalue
    return {"z(fraction hit)": (z, abs(z) < Z_MAX), "KS p(SNR dB)": (ks_snr, ks_snr > P_MIN),
            "KS p(tilt dB/oct)": (ks_tilt, ks_tilt > P_MIN), "KS p(phase uniform)": (ks_phase, ks_phase > P_MIN)}


def check_zero_bands(ref_params: dict, torch_params: dict, device: str = "cpu", rng: str = "batch") -> dict:
    """The zeroed area per item (reference vs torch), and the torch draws against their exact laws."""
    items, frames = 400, 250
    X = np.ones((items, 257, frames), complex)
    ref, out = run_both("zero_bands", X, ref_params, torch_params, seed=6, chunk=50, device=device, rng=rng)
    a_out, a_ref = (out == 0).mean(axis=(1, 2)), (ref == 0).mean(axis=(1, 2))
    res = {"z(mean zeroed area)": (z_welch(a_out, a_ref), abs(z_welch(a_out, a_ref)) < Z_MAX),
           "KS p(zeroed area)": (stats.ks_2samp(a_out, a_ref).pvalue, stats.ks_2samp(a_out, a_ref).pvalue > P_MIN)}
    # the torch draws themselves, against the laws the spec's (reference) parameters define
    ctx = BatchContext(SR, N_FFT, HOP, torch.ones(items, device=device))
    empty = torch.zeros(items, 257, frames, device=device)
    count, f0, width, t0, nfr = (v.cpu() for v in band_rectangles(empty, torch_rng(rng, device, 7, range(items)),
                                                                  ctx, **torch_params))
    lam = ref_params["rate_per_second"] * frames * HOP / SR
    zc = (count.sum().item() - items * lam) / math.sqrt(items * lam)
    res["z(Poisson count)"] = (zc, abs(zc) < Z_MAX)
    used = torch.arange(f0.shape[1])[None] < count[:, None]
    for name, drawn, rng_, unit in (("width", width, ref_params["width_hz"], SR / N_FFT),
                                    ("duration", nfr, ref_params["duration_ms"], 1000 * HOP / SR)):
        values = drawn[used].numpy()
        # P(round(U(a, b) / unit) = k) is the part of [a, b] that rounds to k; max(1, .) moves k = 0 to 1
        ks = np.arange(0, int(rng_[1] / unit) + 3)
        lo_e, hi_e = np.maximum((ks - 0.5) * unit, rng_[0]), np.minimum((ks + 0.5) * unit, rng_[1])
        pmf = np.clip(hi_e - lo_e, 0, None) / (rng_[1] - rng_[0])
        pmf[1] += pmf[0]
        pmf[0] = 0.0
        observed = np.array([(values == k).sum() for k in ks])
        keep = pmf > 0
        outside = int(len(values) - observed[keep].sum())  # a value the law cannot produce fails the test
        expected = pmf[keep] / pmf[keep].sum() * observed[keep].sum()
        p = 0.0 if outside else stats.chisquare(observed[keep], expected).pvalue
        res[f"chi2 p({name})"] = (p, p > P_MIN)
    # the start bin / frame ranges of the reference: f0 in [lo_bin, max(lo_bin + 1, hi_bin - width + 1)),
    # t0 in [0, max(1, frames - duration + 1))
    lo_bin = math.floor(ref_params["freq_range_hz"][0] / (SR / N_FFT))
    hi_bin = min(257, math.ceil(ref_params["freq_range_hz"][1] / (SR / N_FFT)) + 1)
    f0, width, t0, nfr = f0[used], width[used], t0[used], nfr[used]
    fits = bool(torch.all(f0 >= lo_bin) and torch.all(f0 < torch.clamp(hi_bin - width + 1, min=lo_bin + 1))
                and torch.all(t0 >= 0) and torch.all(t0 < torch.clamp(frames - nfr + 1, min=1)))
    res["rectangles placed in range"] = (fits, fits)
    return res


CHECKS = {"zero_strongest": check_zero_strongest, "zero_random": check_zero_random, "zero_bands": check_zero_bands,
          "zero_frames": check_zero_frames, "scale_random": check_scale_random, "add_floor": check_add_floor}


def failures(result: dict) -> dict:
    return {k: v for k, (v, ok) in result.items() if not ok}


def test_every_op_has_a_torch_twin_with_the_same_parameters():
    assert set(TB.TORCH_MANIPULATIONS) == set(MANIPULATIONS) == set(CHECKS)
    import inspect

    def keywords(f):
        return {p.name for p in inspect.signature(f).parameters.values() if p.kind is p.KEYWORD_ONLY}

    for op in MANIPULATIONS:
        assert keywords(MANIPULATIONS[op]) == keywords(TB.TORCH_MANIPULATIONS[op]), op


@pytest.mark.parametrize("rng", RNGS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["stft-v1", "stft-heavy-v1"])
@pytest.mark.parametrize("op", list(CHECKS))
def test_manipulation_statistics_match_the_reference(name, op, device, rng):
    params = params_of(Protocol.load(name), op)
    result = CHECKS[op](params, params, device, rng)
    assert not failures(result), f"{name} {op} ({rng} generators): {result}"


#: one small change per manipulation, applied to the torch path only; the reference keeps stft-v1's value
MUTATIONS = {
    "zero_strongest.prob 0.35->0.30": ("zero_strongest", "prob", 0.30),
    "zero_strongest.top_fraction 0.1->0.09": ("zero_strongest", "top_fraction", 0.09),
    "zero_random.prob 0.15->0.14": ("zero_random", "prob", 0.14),
    "zero_bands.rate 2->1.5": ("zero_bands", "rate_per_second", 1.5),
    "zero_bands.width_hz max 750->650": ("zero_bands", "width_hz", [125, 650]),
    "zero_bands.duration_ms min 40->60": ("zero_bands", "duration_ms", [60, 200]),
    "zero_frames.prob 0.02->0.015": ("zero_frames", "prob", 0.015),
    "scale_random.prob 0.2->0.19": ("scale_random", "prob", 0.19),
    "scale_random.gain_db max 6->5": ("scale_random", "gain_db", [-12.0, 5.0]),
    "add_floor.prob 0.6->0.58": ("add_floor", "prob", 0.58),
    "add_floor.snr_db max 32->30": ("add_floor", "snr_db", [20.0, 30.0]),
    "add_floor.tilt min -3->-2.5": ("add_floor", "tilt_db_per_octave", [-2.5, 0.0]),
}


@pytest.mark.parametrize("rng", RNGS)
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_mutated_parameter_fails_the_equivalence_test(proto, mutation, rng):
    op, key, value = MUTATIONS[mutation]
    ref_params = params_of(proto, op)
    assert ref_params[key] != value
    result = CHECKS[op](ref_params, {**ref_params, key: value}, "cpu", rng)
    assert failures(result), f"{mutation} passes the equivalence test of {op} ({rng} generators): {result}"


def test_strongest_threshold_is_numpys_quantile():
    """The set `values >= at_or_above_quantile(...)` is exactly `values >= numpy.quantile(...)` per row,
    including ties and rows where the quantile position is a whole number."""
    rng = np.random.default_rng(0)
    rows = [rng.rayleigh(size=1001), rng.rayleigh(size=1000), rng.integers(0, 5, 999).astype(float),
            np.r_[np.zeros(600), rng.rayleigh(size=401)]]
    for q in (0.9, 0.5, 0.0, 0.999, 0.3):
        for row in rows:
            thr = at_or_above_quantile(torch.from_numpy(row)[None], q)
            assert np.array_equal(row >= thr.item(), row >= np.quantile(row, q)), (q, len(row))


# ---------------------------------------------------------------------------------------------
# the whole path
@pytest.mark.parametrize("device", DEVICES)
def test_output_shape_dtype_and_clip(proto, device):
    bp = BatchedProtocol(proto, device)
    x = torch.from_numpy(np.stack([speech_like(12000, SR, seed=s, peak=1.0) for s in range(3)])).float().to(device)
    y = bp.apply(x, bp.generator(0, 0))
    assert y.shape == x.shape and y.dtype == torch.float32 and y.device == x.device
    assert (y - x).square().mean() > 1e-4 * x.square().mean()  # noised
    assert torch.isfinite(y).all() and y.abs().max() <= 1.0
    with pytest.raises(BenchError, match="needs more than 256"):
        bp.apply(torch.zeros(2, 256), bp.generator(0, 0, device="cpu"))
    with pytest.raises(BenchError, match=r"expected a float \(batch, time\) tensor, got \(1000,\)"):
        bp.apply(torch.zeros(1000), bp.generator(0, 0, device="cpu"))


def test_each_item_is_noised_as_if_alone(proto):
    """Clean power and the strongest-coefficient threshold are per item: scaling one item of the batch
    scales its output (same draws) and leaves the other items bit-identical."""
    bp = BatchedProtocol(proto)
    a, b = speech_like(16000, SR, seed=1, peak=0.3), speech_like(16000, SR, seed=2, peak=0.3)
    x1 = torch.from_numpy(np.stack([a, b])).float()
    x2 = torch.from_numpy(np.stack([a, 0.1 * b])).float()
    y1, y2 = bp.apply(x1, bp.generator(3, 4)), bp.apply(x2, bp.generator(3, 4))
    assert torch.equal(y1[0], y2[0])
    assert torch.allclose(y2[1], 0.1 * y1[1], atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_and_step_give_the_same_batch(proto, device):
    bp = BatchedProtocol(proto, device)
    x = torch.from_numpy(np.stack([speech_like(16000, SR, seed=s) for s in range(4)])).float().to(device)
    a = bp.apply(x, bp.generator(seed=0, step=17))
    twin = BatchedProtocol(Protocol.from_spec(copy.deepcopy(proto.spec)), device)
    b = twin.apply(x.clone(), twin.generator(seed=0, step=17))
    assert a.cpu().numpy().tobytes() == b.cpu().numpy().tobytes()
    for other in (bp.generator(seed=0, step=18), bp.generator(seed=1, step=17)):
        assert (bp.apply(x, other) != a).float().mean() > 0.5
    # a different protocol gives a different stream for the same (seed, step)
    heavy = BatchedProtocol(Protocol.load("stft-heavy-v1"))
    assert heavy.generator(0, 17).initial_seed() != bp.generator(0, 17).initial_seed()


@pytest.mark.parametrize("device", DEVICES)
def test_item_generators_make_a_slice_draw_what_it_draws_in_the_whole_batch(proto, device):
    """Per-item generators (the trainer's): items 2..3 of a batch of 4 are bit-identical whether noised
    with the whole batch or alone (what data-parallel processes with a slice each rely on); another step or
    seed gives other noise; a count mismatch is an error."""
    bp = BatchedProtocol(proto, device)
    x = torch.from_numpy(np.stack([speech_like(16000, SR, seed=s) for s in range(4)])).float().to(device)
    whole = bp.apply(x, bp.item_generators(seed=0, step=5, items=range(4)))
    part = bp.apply(x[2:], bp.item_generators(seed=0, step=5, items=range(2, 4)))
    assert torch.equal(whole[2:], part)
    for other in (bp.item_generators(0, 6, range(4)), bp.item_generators(1, 5, range(4))):
        assert (bp.apply(x, other) != whole).float().mean() > 0.5
    with pytest.raises(BenchError, match="3 item generators for a batch of 4"):
        bp.apply(x, bp.item_generators(0, 5, range(3)))


def test_generator_must_be_on_the_batch_device(proto):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device to make a generator on another device")
    bp = BatchedProtocol(proto)
    with pytest.raises(BenchError, match="generator on cuda"):
        bp.apply(torch.zeros(1, 4000), bp.generator(0, 0, device="cuda"))


def _unchecked(spec: dict) -> Protocol:
    """A Protocol that skips the reference's own validation, for specs only the torch path must reject."""
    return Protocol(spec=spec, sha256="0" * 64)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["manipulations"].append({"op": "reverse_time", "prob": 1.0}),
     r"manipulation 6: op 'reverse_time'"),
    (lambda s: s["manipulations"][1].pop("prob"),
     r"manipulation 1 \(zero_random\) with missing parameter\(s\) prob"),
    (lambda s: s["manipulations"][5].update(snr=[1, 2]),
     r"manipulation 5 \(add_floor\) with unknown parameter\(s\) snr"),
    (lambda s: s["stft"].update(window="hamming"), r"STFT window 'hamming'"),
    (lambda s: s["stft"].update(win_length=400), r"win_length 400 != n_fft 512"),
    (lambda s: s.update(reverb={"rt60": 0.3}), r"field\(s\) reverb"),
    (lambda s: s["output"].update(dither=True), r"output field\(s\) dither"),
])
def test_a_spec_the_torch_path_does_not_implement_fails_loudly(proto, edit, message):
    spec = copy.deepcopy(proto.spec)
    edit(spec)
    with pytest.raises(BenchError, match="batched torch path does not implement .*" + message):
        BatchedProtocol(_unchecked(spec))


def test_every_shipped_protocol_is_supported():
    from bench.protocol import available_protocols

    for name in available_protocols():
        assert BatchedProtocol(Protocol.load(name)).name == name


# ---------------------------------------------------------------------------------------------
# noisy-input metrics on the real valid split
def valid_noisy_means(corpus, draws: int, protocol: str = DEFAULT_PROTOCOL) -> dict:
    """Mean noisy PESQ-WB / STOI / SI-SDR over the vctk-mini valid utterances x `draws` independent noise
    draws per utterance, for the reference and the torch path, and the per-utterance differences."""
    from bench.metrics.registry import pesq_wb, si_sdr, stoi

    proto = Protocol.load(protocol)
    bp = BatchedProtocol(proto)
    track = load_archived("vctk-mini-v1")  # its valid split: the 16 VCTK utterances of p287 and p228
    utts = [u for u in track.utterances() if u.split == "valid"]
    per_utt = {"ref": [], "torch": []}
    for j, u in enumerate(utts):
        x = load_16k(corpus / u.path)
        noisy = {"ref": [proto.apply(x, u.utt_id, stream=f"equivalence:{k}") for k in range(draws)],
                 "torch": list(bp.apply(torch.from_numpy(np.tile(x, (draws, 1))).float(),
                                        bp.generator(seed=99, step=j)).numpy())}
        for path, ys in noisy.items():
            per_utt[path].append([np.mean([m(x, y) for y in ys]) for m in (pesq_wb, stoi, si_sdr)])
    ref, tor = np.array(per_utt["ref"]), np.array(per_utt["torch"])
    diff = tor - ref  # per utterance: both paths' sampling noise, the utterance effect cancels
    return {"n_utts": len(utts), "ref": ref.mean(axis=0), "torch": tor.mean(axis=0), "diff": diff.mean(axis=0),
            "se": diff.std(axis=0, ddof=1) / math.sqrt(len(utts))}


def _report(res: dict, draws: int, seconds: float) -> str:
    names = ("PESQ-WB", "STOI", "SI-SDR")
    return (f"{res['n_utts']} valid utterances x {draws} draws ({seconds:.0f} s): " + "; ".join(
        f"{n} ref {r:.3f} torch {t:.3f} diff {d:+.4f} (se {s:.4f})"
        for n, r, t, d, s in zip(names, res["ref"], res["torch"], res["diff"], res["se"])))


BOUNDS = np.array([0.03, 0.003, 0.15])  # PESQ-WB, STOI, SI-SDR dB (the equivalence bounds)


SLOW_DRAWS, FAST_DRAWS = 32, 2


@pytest.mark.slow
def test_valid_split_metrics_match_the_reference(vctk_mini):
    """32 draws per utterance and path (512 noisy files per path): the means agree within the issue's
    0.03 PESQ-WB / 0.003 STOI / 0.15 dB SI-SDR. A single draw's PESQ-WB varies by ~0.16 (the floor SNR is
    drawn per utterance), so fewer draws would make the 0.03 bound a coin flip."""
    t = time.time()
    res = valid_noisy_means(vctk_mini, draws=SLOW_DRAWS)
    report = _report(res, SLOW_DRAWS, time.time() - t)
    print(report)
    assert np.all(np.abs(res["diff"]) < BOUNDS), report


def test_valid_split_metrics_match_the_reference_fast(vctk_mini):
    """2 draws per utterance and path: the standard error of the difference is ~4x that of the slow test,
    so the bounds are 5x the issue's (0.15 / 0.015 / 0.75 dB, about 4 standard errors); the slow test
    holds the real bounds."""
    t = time.time()
    res = valid_noisy_means(vctk_mini, draws=FAST_DRAWS)
    report = _report(res, FAST_DRAWS, time.time() - t)
    print(report)
    assert np.all(np.abs(res["diff"]) < 5 * BOUNDS), report
