"""Training batches (bench/train/batches.py, bench/train/resident.py): the device-resident train audio and the
torch path against the laws of the numpy path.

- the resident audio: int16, one flat tensor, segments bit-identical to the prepared samples (zero past
  an utterance's end);
- utterance draws follow the track's sampling weights (or the lengths), crop starts are uniform:
  chi-square goodness of fit, p > P_MIN (seeds are fixed, so the test is deterministic; a mutated law
  is checked to fail);
- a batch is a pure function of (seed, step), a slice of it is what the same items are in the whole
  batch (both paths), no NaN, float32 on the device; the shift crops noisy and clean alike;
- the spectral tilt: measured gains of tones at its slope, linear filtering (nothing wraps round), and
  in batches: slopes in range, uniform, a slice is the same items, off means the batches of before.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from scipy import stats

from bench.train.batches import DeviceBatches, SegmentBatches, spectral_tilt
from bench.train.resident import ResidentAudio
from bench.protocol import Protocol
from bench.protocol.batched import draw

from conftest import speech_like

P_MIN = 1e-4
PROTO = Protocol.load()


def levels_clean(n: int = 4) -> dict[str, np.ndarray]:
    """Utterance i: the constant 0.1 * (i + 1) (PCM16-exact: a multiple of 1/32768), (i + 1) * 8000 samples."""
    return {f"u{i}": np.full(8000 * (i + 1), round(0.1 * (i + 1) * 32768) / 32768, np.float32) for i in range(n)}


def test_resident_audio_is_int16_and_exact():
    clean = {f"s{i}": (np.round(speech_like(3000 + 1000 * i, 16000, seed=i) * 32767) / 32768).astype(np.float32)
             for i in range(3)}
    ra = ResidentAudio(clean)
    assert ra.dtype == torch.int16 and ra.audio.shape == (3000 + 4000 + 5000,) and ra.nbytes == 2 * 12000
    utt = torch.tensor([0, 2, 1])
    start = torch.tensor([0, 4500, 10])
    seg = ra.segments(utt, start, 1000)
    assert seg.dtype == torch.float32 and seg.shape == (3, 1000)
    assert np.array_equal(seg[0].numpy(), clean["s0"][:1000])
    assert np.array_equal(seg[1, :500].numpy(), clean["s2"][4500:]) and not seg[1, 500:].any()  # zero past the end
    assert np.array_equal(seg[2].numpy(), clean["s1"][10:1010])
    # audio that is not PCM16-exact stays float32
    assert ResidentAudio({"x": np.full(100, 0.1234567, np.float32)}).dtype == torch.float32


def _utterance_counts(batches: DeviceBatches, steps: int) -> np.ndarray:
    counts = Counter()
    for step in range(steps):
        counts.update(batches.utterances(step)[0].tolist())
    return np.array([counts[i] for i in range(len(batches.audio.ids))])


@pytest.mark.parametrize("weights", [None, {"u0": 0.7, "u1": 0.1, "u2": 0.1, "u3": 0.1}])
def test_utterances_are_drawn_with_the_sampling_weights(weights):
    ra = ResidentAudio(levels_clean(), weights)
    expected = np.array([1, 2, 3, 4], float) / 10 if weights is None else np.array(list(weights.values()))
    assert np.allclose(ra.probabilities, expected)
    counts = _utterance_counts(DeviceBatches(ra, PROTO, 4000, seed=3, items=range(16)), steps=150)
    p = stats.chisquare(counts, expected * counts.sum()).pvalue
    assert p > P_MIN, (counts, expected)
    # power: the same draws against the other law fail
    other = np.array([0.25] * 4)
    assert stats.chisquare(counts, other * counts.sum()).pvalue < P_MIN


def test_crop_starts_are_uniform():
    ra = ResidentAudio(levels_clean(2), {"u0": 0.0, "u1": 1.0})   # always u1: 16000 samples, 12001 starts
    b = DeviceBatches(ra, PROTO, 4000, seed=5, items=range(32))
    starts = torch.cat([b.utterances(s)[1] for s in range(100)]).numpy()
    assert set(torch.cat([b.utterances(s)[0] for s in range(5)]).tolist()) == {1}   # weight 0: never drawn
    assert starts.min() >= 0 and starts.max() <= 12000
    counts = np.histogram(starts, bins=12, range=(0, 12001))[0]
    assert stats.chisquare(counts).pvalue > P_MIN, counts


def test_device_batches_shape_purity_slices_and_no_nan():
    clean = {f"s{i}": (np.round(speech_like(6000 + 3000 * i, 16000, seed=i) * 32767) / 32768).astype(np.float32)
             for i in range(4)}
    ra = ResidentAudio(clean)
    whole = DeviceBatches(ra, PROTO, 4000, seed=1, items=range(6))
    noisy, ref = whole.batch(7)
    assert noisy.shape == ref.shape == (6, 4000) and noisy.dtype == ref.dtype == torch.float32
    assert torch.isfinite(noisy).all() and (noisy - ref).abs().mean() > 1e-4
    again = whole.batch(7)
    assert torch.equal(again[0], noisy) and torch.equal(again[1], ref)            # a pure function of (seed, step)
    assert not torch.equal(whole.batch(8)[0], noisy)                              # fresh noise every step
    part = DeviceBatches(ra, PROTO, 4000, seed=1, items=range(4, 6)).batch(7)
    assert torch.equal(part[0], noisy[4:]) and torch.equal(part[1], ref[4:])      # a rank's slice
    # every clean row is a crop of its utterance
    utt, start = whole.utterances(7)
    for row, (u, s) in enumerate(zip(utt.tolist(), start.tolist())):
        a = clean[f"s{u}"][s:s + 4000]
        assert np.array_equal(ref[row, :len(a)].numpy(), a)


def test_shift_crops_noisy_and_clean_alike():
    ra = ResidentAudio(levels_clean())
    plain = DeviceBatches(ra, PROTO, 4000, seed=2, items=range(4))
    shifted = DeviceBatches(ra, PROTO, 4000, seed=2, items=range(4), shift=1000)
    n0, c0 = plain.batch(3)
    n1, c1 = shifted.batch(3)
    assert n1.shape == c1.shape == (4, 3000)
    for row in range(4):   # the same segment and noise, cropped at one offset in 0..1000 for both
        offsets = [o for o in range(1001) if torch.equal(n0[row, o:o + 3000], n1[row])]
        assert offsets and torch.equal(c0[row, offsets[0]:offsets[0] + 3000], c1[row])


def test_numpy_path_slice_is_the_same_items():
    clean = levels_clean()
    whole = SegmentBatches(clean, PROTO, 4, 4000, seed=1, start_step=0)
    part = SegmentBatches(clean, PROTO, 4, 4000, seed=1, start_step=0, items=range(2, 4))
    (nw, cw), (np_, cp) = whole.batch(5), part.batch(5)
    assert torch.equal(nw[2:], np_) and torch.equal(cw[2:], cp)


def _tone_db(x: np.ndarray, freq: float, rate: int = 16000) -> float:
    t = np.arange(len(x)) / rate
    return 20 * np.log10(abs(np.dot(x, np.exp(-2j * np.pi * freq * t))) * 2 / len(x))


@pytest.mark.parametrize("slope", [-4.0, 0.0, 2.5, 6.0])
def test_spectral_tilt_gains_follow_the_slope(slope):
    rate, n = 16000, 16000
    t = np.arange(n) / rate
    freqs = (62.5, 250.0, 1000.0, 2000.0, 4000.0, 7000.0)     # whole periods in 1 s
    x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in freqs)
    y = spectral_tilt(torch.tensor(x[None], dtype=torch.float32), torch.tensor([slope]))[0].numpy().astype(np.float64)
    mid = slice(2000, n - 2000)             # away from the ends, where the tones start and stop
    for f in freqs:
        octaves = float(np.clip(np.log2(f / 1000.0), -3, 3))
        got = _tone_db(y[mid], f) - _tone_db(x[mid], f)
        assert abs(got - slope * octaves) < 0.1, (f, got, slope * octaves)


def test_spectral_tilt_is_linear_filtering_not_circular():
    x = torch.zeros(1, 8000)
    x[0, -200:] = torch.randn(200, generator=torch.Generator().manual_seed(0))   # sound only at the end
    y = spectral_tilt(x, torch.tensor([6.0]))
    assert y[0, :7000].abs().max() < 1e-4 * y.abs().max()      # nothing wrapped round to the start
    assert torch.allclose(spectral_tilt(x, torch.tensor([0.0])), x, atol=1e-6)


def test_tilt_in_batches_is_drawn_per_item_and_off_changes_nothing():
    clean = {f"s{i}": (np.round(speech_like(6000 + 3000 * i, 16000, seed=i) * 32767) / 32768).astype(np.float32)
             for i in range(4)}
    ra = ResidentAudio(clean)
    plain = DeviceBatches(ra, PROTO, 4000, seed=1, items=range(6))
    off = DeviceBatches(ra, PROTO, 4000, seed=1, items=range(6), tilt_db=0.0)
    assert all(torch.equal(a, b) for a, b in zip(plain.batch(3), off.batch(3)))
    tilted = DeviceBatches(ra, PROTO, 4000, seed=1, items=range(6), tilt_db=5.0)
    noisy, ref = tilted.batch(3)
    utt, start = tilted.utterances(3)
    crops = ra.segments(utt, start, 4000)
    assert torch.equal(utt, plain.utterances(3)[0])                      # the same crops, then tilted
    # each item's slope is the next draw of its generator after its crop's: redraw them and compare
    gens, _ = tilted.draws(3)
    slopes = draw("uniform_", ra.audio, gens, (6,)) * 10 - 5
    assert torch.allclose(ref, spectral_tilt(crops, slopes), atol=1e-6)
    assert not torch.allclose(ref, crops, atol=1e-3)
    part = DeviceBatches(ra, PROTO, 4000, seed=1, items=range(4, 6), tilt_db=5.0).batch(3)
    assert torch.equal(part[1], ref[4:]) and torch.equal(part[0], noisy[4:])      # a rank's slice
