"""The heavy-noise protocol tier `stft-heavy-v1`: pinned spec hash, calibration band on real speech,
golden outputs (tests/golden/stft-heavy-v1/, reproduced by tests/test_protocol.py's golden tests for
every golden folder) and the committed reference hashes of its frozen vctk-mini noisy valid/test set."""

from __future__ import annotations

import copy
import csv

import numpy as np
import pytest

from bench.core.audio import load_16k, to_pcm16
from bench.data.tracks import MANIFEST_DIR, load_track
from bench.protocol import Protocol, available_protocols

from test_protocol import GOLDEN_DIR, _golden_inputs, _load_golden, golden_mismatch, real_path

NAME = "stft-heavy-v1"
#: SHA-256 of the canonical JSON of stft-heavy-v1; like stft-v1's it must never change (a change is a v2).
STFT_HEAVY_V1_SHA256 = "074257d1ba3b9b52845af3be8a540e576ef4e0c5e91e013314bef7f049bf3372"
CALIB_UTTS = ["p232_010", "p257_418", "p232_052", "p257_054"]


@pytest.fixture(scope="module")
def heavy() -> Protocol:
    return Protocol.load(NAME)


def test_heavy_spec_is_pinned(heavy):
    assert NAME in available_protocols()
    assert heavy.record() == {"name": NAME, "id": "stft-heavy", "version": 1, "sha256": STFT_HEAVY_V1_SHA256,
                              "global_seed": 1234}, (
        "stft-heavy-v1.json changed: restore it and put the change in a new version (stft-heavy-v2.json)")
    # the same six manipulations as stft-v1, in the same order; only their parameters differ
    v1 = Protocol.load("stft-v1")
    assert [m["op"] for m in heavy.spec["manipulations"]] == [m["op"] for m in v1.spec["manipulations"]]
    assert heavy.spec["stft"] == v1.spec["stft"] and heavy.spec["output"] == v1.spec["output"]
    assert heavy.spec["manipulations"] != v1.spec["manipulations"]


def test_heavy_is_harsher_than_v1_on_the_same_audio(heavy, vctk_mini):
    """Same utterance, same stream: the heavy tier's output is further from the clean speech."""
    x = load_16k(real_path(vctk_mini, "p232_043"))
    v1 = Protocol.load("stft-v1")
    err = {p.name: float(np.mean((p.apply(x, "p232_043") - x) ** 2)) for p in (v1, heavy)}
    assert err[NAME] > 1.3 * err["stft-v1"], err


def test_heavy_noisy_input_quality_is_in_its_calibrated_band(heavy, vctk_mini):
    """stft-heavy-v1 was calibrated to PESQ-WB 1.1-1.3 / STOI 0.70-0.80 (mean over the 30 vctk-mini test
    utterances, docs/protocol-heavy.md); on these 4 the mean stays in a slightly wider band, and the
    speech stays intelligible (STOI > 0.6 for every utterance)."""
    pesq = pytest.importorskip("pesq").pesq
    stoi = pytest.importorskip("pystoi").stoi
    scores = []
    for u in CALIB_UTTS:
        x = load_16k(real_path(vctk_mini, u))
        y = heavy.apply(x, u)
        scores.append((pesq(16000, x, y, "wb"), stoi(x, y, 16000, extended=False)))
    p, s = np.mean(scores, axis=0)
    assert 1.05 <= p <= 1.4, f"mean noisy PESQ-WB {p:.2f} outside 1.05-1.4: {scores}"
    assert 0.68 <= s <= 0.83, f"mean noisy STOI {s:.3f} outside 0.68-0.83: {scores}"
    assert all(i > 0.6 for _, i in scores), scores


def test_heavy_golden_exists_and_pins_the_spec(heavy):
    meta = _load_golden(GOLDEN_DIR / NAME)
    assert meta["protocol"] == heavy.record() and len(meta["items"]) == 3


#: one small parameter change per manipulation family; the golden comparison must catch each on every file
PERTURBATIONS = {
    "zero_strongest.prob+0.01": (0, "prob", 0.01),
    "zero_random.prob+0.01": (1, "prob", 0.01),
    "add_floor.snr_db+0.5dB": (5, "snr_db", 0.5),
}


@pytest.mark.parametrize("change", list(PERTURBATIONS))
def test_heavy_golden_tolerance_catches_a_small_parameter_change(heavy, change, vctk_mini):
    meta = _load_golden(GOLDEN_DIR / NAME)
    step, key, delta = PERTURBATIONS[change]
    spec = copy.deepcopy(heavy.spec)
    value = spec["manipulations"][step][key]
    spec["manipulations"][step][key] = [v + delta for v in value] if isinstance(value, list) else value + delta
    changed = Protocol.from_spec(spec)
    problems = {item["utt_id"]: golden_mismatch(
        to_pcm16(changed.apply(x, item["utt_id"], stream=meta["stream"], seed=meta["seed"])), ref)
        for item, x, ref in _golden_inputs(meta, vctk_mini)}
    assert all(problems.values()), f"{change} would pass the golden comparison: {problems}"


def test_heavy_reference_noisy_hashes_cover_valid_and_test():
    """bench/data/manifests/vctk-mini-v2.stft-heavy-v1.csv pins the frozen noisy valid/test audio (checked by
    `bench data verify --protocol stft-heavy-v1`): one row per valid/test utterance, lengths as the clean."""
    with open(MANIFEST_DIR / f"vctk-mini-v2.{NAME}.csv", newline="") as fh:
        rows = {r["utt_id"]: r for r in csv.DictReader(fh)}
    track = load_track("vctk-mini")
    expected = {u.utt_id: u for u in track.utterances() if u.split in ("valid", "test")}
    assert set(rows) == set(expected)
    assert all(rows[u]["split"] == expected[u].split for u in rows)
    with open(MANIFEST_DIR / "vctk-mini-v2.stft-v1.csv", newline="") as fh:
        v1 = {r["utt_id"]: r for r in csv.DictReader(fh)}
    assert all(rows[u]["num_samples"] == v1[u]["num_samples"] for u in rows)  # same clean audio, same length
    assert not any(rows[u]["sha256_pcm16"] == v1[u]["sha256_pcm16"] for u in rows)


def test_heavy_reference_hashes_are_reproduced(heavy, vctk_mini):
    """Two of the frozen noisy test files, recomputed from the corpus, hash to the committed reference."""
    from bench.core.audio import from_pcm16, sha256_pcm16

    with open(MANIFEST_DIR / f"vctk-mini-v2.{NAME}.csv", newline="") as fh:
        ref = {r["utt_id"]: r["sha256_pcm16"] for r in csv.DictReader(fh)}
    for u in ("p232_170", "p257_054"):
        clean = from_pcm16(to_pcm16(load_16k(real_path(vctk_mini, u))))  # as prepared: 16 kHz PCM16 clean
        assert sha256_pcm16(to_pcm16(heavy.apply(clean, u))) == ref[u], u
