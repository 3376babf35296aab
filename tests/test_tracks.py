"""Tracks drawn from several corpora, test-only tracks, the corpus layouts they use, the selection rules,
and balanced sampling of training segments; on synthetic corpora and on the real shared data."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch  # noqa: F401  (imported once here, so forked prepare workers do not each import it)

from bench.data import selection
from bench.corpora.layouts import scan
from bench.data.manifest import OPTIONAL_COLUMNS, read_manifest
from bench.data.prepare import describe_sources, prepare
from bench.data.sampling import sampling_weights, shares
from bench.data.tracks import (Track, available_tracks, load_archived, load_track, only_test_tracks,
                               validate_track_spec)
from bench.core.errors import DataError
from bench.protocol import Protocol
from bench.train.trainer import SegmentBatches

from conftest import make_vctk_corpus, speech_like, write_audio

PROTO = Protocol.load()


def make_librispeech(root: Path, subset: str, speakers: dict[str, list[float]], chapters: bool = False) -> Path:
    for spk, durations in speakers.items():
        for i, d in enumerate(durations):
            utt = f"{spk}-100-{i:04d}"
            folder = root / subset / spk / ("100" if chapters else "")
            write_audio(folder / f"{utt}.flac", speech_like(int(d * 16000), 16000, seed=hash(utt) % 2**31), 16000)
    return root


def make_so762(root: Path, split: str, speakers: dict[str, list[float]]) -> Path:
    for k, (spk, durations) in enumerate(speakers.items()):
        for i, d in enumerate(durations):
            utt = f"{int(spk[-4:]):05d}{i:04d}"
            write_audio(root / split / spk / f"{utt}.flac", speech_like(int(d * 16000), 16000, seed=k * 10 + i), 16000)
    return root


def multi_spec(**extra) -> dict:
    spec = {
        "name": "multi", "version": 1, "split_id": "multi-v1",
        "corpora": {"vctk": {"layout": "0.80", "subdir": "vctk"},
                    "ls": {"layout": "librispeech", "subdir": "ls"},
                    "so": {"layout": "speechocean762", "subdir": "so"}},
        "splits": {"test": {"vctk": ["p232"]},
                   "valid": {"ls": {"subset": "train-clean-100", "speakers": ["103"]}},
                   "train": {"vctk": ["p225"], "ls": {"subset": "train-clean-100", "speakers": ["19", "26"]},
                             "so": {"subset": "train", "speakers": ["SPEAKER0001", "SPEAKER0002"]}}},
        "manifest": None,
    }
    spec.update(extra)
    return spec


@pytest.fixture
def multi(tmp_path):
    data = tmp_path / "data"
    make_vctk_corpus(data / "vctk", "0.80", ["p225", "p232"], 2, 16000, duration=0.5)
    make_librispeech(data / "ls", "train-clean-100", {"19": [0.5, 1.0], "26": [0.5], "103": [0.6]}, chapters=True)
    make_librispeech(data / "ls", "test-other", {"1688": [0.5]})
    make_so762(data / "so", "train", {"SPEAKER0001": [0.4, 0.4, 0.8], "SPEAKER0002": [0.5]})
    make_so762(data / "so", "test", {"SPEAKER0003": [0.5]})
    return data


def test_multi_corpus_track_describe_and_prepare(multi, tmp_path):
    track = Track(multi_spec())
    validate_track_spec(track.spec)
    rows = describe_sources(track, multi, jobs=2)  # a data root holding one folder per corpus
    got = {(r.corpus, r.split, r.speaker, r.path) for r in rows}
    assert got == {
        ("vctk", "test", "p232", "wav48/p232/p232_001.wav"), ("vctk", "test", "p232", "wav48/p232/p232_002.wav"),
        ("vctk", "train", "p225", "wav48/p225/p225_001.wav"), ("vctk", "train", "p225", "wav48/p225/p225_002.wav"),
        ("ls", "valid", "103", "train-clean-100/103/100/103-100-0000.flac"),
        ("ls", "train", "19", "train-clean-100/19/100/19-100-0000.flac"),
        ("ls", "train", "19", "train-clean-100/19/100/19-100-0001.flac"),
        ("ls", "train", "26", "train-clean-100/26/100/26-100-0000.flac"),
        ("so", "train", "SPEAKER0001", "train/SPEAKER0001/000010000.flac"),
        ("so", "train", "SPEAKER0001", "train/SPEAKER0001/000010001.flac"),
        ("so", "train", "SPEAKER0001", "train/SPEAKER0001/000010002.flac"),
        ("so", "train", "SPEAKER0002", "train/SPEAKER0002/000020000.flac")}
    pt = prepare(track, PROTO, {k: multi / d for k, d in (("vctk", "vctk"), ("ls", "ls"), ("so", "so"))},
                 tmp_path / "prep", jobs=2)
    src = tmp_path / "prep/multi/source_manifest.csv"
    assert src.read_text().splitlines()[0].endswith(",corpus") and read_manifest(src) == sorted(
        rows, key=lambda r: (("train", "valid", "test").index(r.split), r.utt_id))
    assert pt.info()["counts"] == {"train": 9, "valid": 1, "test": 2}
    assert len(pt.load_clean("train", "19-100-0001")) == 16000
    assert track.source_path(multi, rows[0]) == multi / track.corpus_dir_of(rows[0].corpus) / rows[0].path


def test_utterance_ids_must_be_unique_across_corpora(multi):
    """speechocean762 ids do not name the speaker: two corpora can hold the same id; a track refuses that."""
    spec = multi_spec()
    spec["corpora"]["so2"] = {"layout": "speechocean762", "subdir": "so2"}
    spec["splits"]["valid"]["so2"] = {"subset": "train", "speakers": ["SPEAKER0009"]}
    (multi / "so2/train/SPEAKER0009").mkdir(parents=True)
    src = multi / "so/train/SPEAKER0002/000020000.flac"
    (multi / "so2/train/SPEAKER0009/000020000.flac").write_bytes(src.read_bytes())
    with pytest.raises(DataError, match="utterance ids are not unique across its corpora: 000020000"):
        describe_sources(Track(spec), multi, jobs=1)


def test_spec_validation_multi_and_test_only():
    spec = multi_spec()
    bad = copy.deepcopy(spec)
    bad["splits"]["valid"]["so"] = {"subset": "train", "speakers": ["19"]}
    with pytest.raises(DataError, match="speaker 19 is in both valid and train; splits must be disjoint"):
        validate_track_spec(bad)
    bad = copy.deepcopy(spec)
    bad["splits"]["train"]["so"]["speakers"].append("26")
    with pytest.raises(DataError, match="speaker 26 is in both corpora ls and so of train; speaker ids must be unique"):
        validate_track_spec(bad)
    bad = copy.deepcopy(spec)
    bad["splits"]["train"]["nope"] = ["x1"]
    with pytest.raises(DataError, match="draws on corpus 'nope', which is not in 'corpora'"):
        validate_track_spec(bad)
    bad = copy.deepcopy(spec)
    bad["corpora"]["so"]["layout"] = "wav16"
    with pytest.raises(DataError, match="unknown layout 'wav16'"):
        validate_track_spec(bad)
    only = {"name": "t", "version": 1, "split_id": "t-v1", "test_only": True,
            "corpus": {"layout": "speechocean762", "subset": "test"}, "splits": {"test": ["SPEAKER0003"]}}
    validate_track_spec(only)
    assert Track(only).test_only and Track(only).split_names == ("test",)
    with pytest.raises(DataError, match="a test-only track has only a test split"):
        validate_track_spec({**only, "splits": {"test": ["a"], "train": ["b"]}})
    with pytest.raises(DataError, match="split 'train' has no speakers"):  # a benchmark track needs all three
        validate_track_spec({**only, "test_only": False})
    with pytest.raises(DataError, match="recorded noise needs a test-only track on a corpus of clean/noisy pairs"):
        validate_track_spec({**only, "noise": {"kind": "recorded"}})


def test_subset_layouts_and_pick_by_length(multi):
    files = scan(multi / "so", ["SPEAKER0001"], layout="speechocean762", subset="train",
                 pick={"by": "length", "start": 1, "count": 1})
    assert [f.utt_id for f in files] == ["000010001"]  # 0.4 s (ids 0, 1) then 0.8 s: rank 1 is the second 0.4 s
    files = scan(multi / "so", ["SPEAKER0001"], layout="speechocean762", subset="train",
                 pick={"by": "length", "start": 0, "count": 3})
    assert [f.utt_id for f in files] == ["000010000", "000010001", "000010002"]  # kept in id order
    with pytest.raises(DataError, match="speaker SPEAKER0002 has 1 utterances, the selection takes ranks 1..1"):
        scan(multi / "so", ["SPEAKER0002"], layout="speechocean762", subset="train", pick={"start": 1, "count": 1})
    with pytest.raises(DataError, match="not a librispeech corpus folder with the subset dev-clean/"):
        scan(multi / "ls", ["19"], layout="librispeech", subset="dev-clean")
    with pytest.raises(DataError, match="missing speaker 1688"):
        scan(multi / "ls", ["1688"], layout="librispeech", subset="train-clean-100")
    assert [f.path for f in scan(multi / "ls", ["1688"], layout="librispeech", subset="test-other")] == [
        "test-other/1688/1688-100-0000.flac"]  # no chapter folder, as in librispeech-mini


# ---------------------------------------------------------------------------------------------
# balanced sampling
RULE = {"rule": "corpus-shares-speaker-cap", "corpus_shares": {"vctk": 0.2, "ls": 0.5, "so": 0.3},
        "max_speaker_share": 0.3}


def test_sampling_weights_rule(multi):
    track = Track(multi_spec(sampling=RULE))
    validate_track_spec(track.spec)
    rows = [r for r in describe_sources(track, multi, jobs=1) if r.split == "train"]
    w = sampling_weights(RULE, rows)
    s = shares(w, rows)
    assert set(w) == {r.utt_id for r in rows} and abs(sum(w.values()) - 1) < 1e-12
    assert s["corpus"] == pytest.approx({"vctk": 0.2, "ls": 0.5, "so": 0.3})
    # ls: 19 has 1.5 s, 26 has 0.5 s -> 0.375 / 0.125 uncapped; the cap 0.3 moves 0.075 to 26
    assert s["speaker"]["19"] == pytest.approx(0.3) and s["speaker"]["26"] == pytest.approx(0.2)
    assert s["max_speaker_share"] == pytest.approx(0.3)
    # so: 1.6 s vs 0.5 s, under the cap: by duration; within a speaker by length
    assert s["speaker"]["SPEAKER0001"] == pytest.approx(0.3 * 1.6 / 2.1)
    assert w["000010002"] == pytest.approx(2 * w["000010000"])
    with pytest.raises(DataError, match="cannot make its share 0.2"):
        validate_track_spec(multi_spec(sampling={**RULE, "max_speaker_share": 0.1}))
    with pytest.raises(DataError, match="must be positive and sum to 1"):
        validate_track_spec(multi_spec(sampling={**RULE, "corpus_shares": {"vctk": 0.2, "ls": 0.5, "so": 0.2}}))
    with pytest.raises(DataError, match="corpus_shares name"):
        validate_track_spec(multi_spec(sampling={**RULE, "corpus_shares": {"vctk": 0.5, "ls": 0.5}}))


def test_segment_batches_draw_with_the_weights():
    clean = {f"u{i}": np.full(8000 * (i + 1), 0.1 * (i + 1), np.float32) for i in range(4)}
    plain = SegmentBatches(clean, PROTO, 8, 4000, seed=3, start_step=0)
    assert np.array_equal(plain.weights, plain.lengths)  # no rule: proportional to length, as before
    again = SegmentBatches(clean, PROTO, 8, 4000, seed=3, start_step=0, weights=None)
    assert all(torch.equal(a, b) for a, b in zip(plain.batch(5), again.batch(5)))
    weights = {"u0": 0.7, "u1": 0.1, "u2": 0.1, "u3": 0.1}
    ws = SegmentBatches(clean, PROTO, 8, 4000, seed=3, start_step=0, weights=weights)
    counts = Counter()
    for step in range(12):
        drawn = np.random.default_rng([3, step]).choice(4, size=8, p=ws.weights / ws.weights.sum())  # as in .batch
        counts.update(drawn.tolist())
        levels = ws.batch(step)[1].abs().amax(dim=1).numpy()  # utterance i is the constant 0.1 * (i + 1)
        assert sorted(np.rint(levels / 0.1).astype(int) - 1) == sorted(drawn)
    assert counts[0] > 0.55 * 96  # u0 (the shortest) gets most segments under the rule
    assert all(torch.equal(a, b) for a, b in zip(ws.batch(7), ws.batch(7)))  # a pure function of (seed, step)


# ---------------------------------------------------------------------------------------------
# the committed tracks on the real shared data
def test_registry():
    assert available_tracks() == ["vctk", "vctk-mini"]  # benchmark tracks: one leaderboard section each
    assert only_test_tracks() == ["librispeech-test-other", "so762-test", "vbdemand-sample"]
    for name in only_test_tracks() + available_tracks():
        t = load_track(name)
        assert t.test_only == (name in only_test_tracks())
    v2 = load_track("vctk-mini")
    assert v2.split_id == "vctk-mini-v2" and v2.frozen and v2.diagnostics
    assert v2.evaluation_tracks == ["so762-test", "librispeech-test-other", "vbdemand-sample"]


def test_vctk_mini_v2_test_split_is_v1s():
    v1, v2 = load_archived("vctk-mini-v1"), load_track("vctk-mini")
    def rows(t):
        return [(u.utt_id, u.speaker, u.path, u.sample_rate, u.num_samples, u.sha256_pcm16)
                for u in t.utterances(split="test")]

    assert rows(v1) == rows(v2) and len(rows(v2)) == 30
    assert {u.corpus for u in v2.utterances(split="test")} == {"vctk"}
    ref1 = v1.reference_noisy_path("stft-v1").read_text().splitlines()
    ref2 = v2.reference_noisy_path("stft-v1").read_text().splitlines()
    assert ref1[0] == ref2[0] and [r for r in ref1 if ",test," in r] == [r for r in ref2 if ",test," in r]
    assert v1.reference_noisy_path("stft-v1").name == "vctk-mini.stft-v1.csv"


def _meta(shared: Path) -> dict[str, dict[str, dict]]:
    return {c: {r["utt_id"]: r for r in selection.read_corpus_manifest(shared / c / "manifest.csv")}
            for c in ("vctk-mini", "librispeech-mini", "speechocean762-mini", "vbdemand-sample")}


def test_vctk_mini_v2_splits(shared_data):
    meta = _meta(shared_data)
    track = load_track("vctk-mini")
    rows = track.utterances()
    assert len(rows) == 1270 and len({r.utt_id for r in rows}) == 1270  # ids unique across the corpora as given
    speakers = {s: {r.speaker for r in rows if r.split == s} for s in ("train", "valid", "test")}
    assert not (speakers["train"] & speakers["valid"] or speakers["train"] & speakers["test"]
                or speakers["valid"] & speakers["test"])
    corpus_dir = {"vctk": "vctk-mini", "librispeech": "librispeech-mini", "speechocean762": "speechocean762-mini"}
    for r in rows:  # every file is the shared corpus's file, with the hash its distribution states
        m = meta[corpus_dir[r.corpus]][r.utt_id]
        assert (m["path"], m["sha256_pcm16"], int(m["num_samples"])) == (r.path, r.sha256_pcm16, r.num_samples)
        if r.corpus == "speechocean762":
            assert m["orig_split"] == "train"  # never a test-split speaker of speechocean762
        if r.corpus == "librispeech":
            assert m["subset"] == "train-clean-100"  # never test-other
    so_test = {m["speaker"] for m in meta["speechocean762-mini"].values() if m["orig_split"] == "test"}
    ls_other = {m["speaker"] for m in meta["librispeech-mini"].values() if m["subset"] == "test-other"}
    assert not ({r.speaker for r in rows} & (so_test | ls_other))
    # all train-split so762 speakers and all train-clean-100 speakers are used, in train or valid
    assert {r.speaker for r in rows if r.corpus == "speechocean762"} == \
        {m["speaker"] for m in meta["speechocean762-mini"].values() if m["orig_split"] == "train"}
    assert len({r.speaker for r in rows if r.corpus == "librispeech"}) == 191
    valid = [r for r in rows if r.split == "valid"]
    assert len(valid) == 38 and sum(r.seconds for r in valid) <= 240
    assert Counter(r.corpus for r in valid) == {"vctk": 16, "librispeech": 6, "speechocean762": 16}
    # the speaker lists follow the written rules
    ls, so = list(meta["librispeech-mini"].values()), list(meta["speechocean762-mini"].values())
    sel = {(s.split, s.corpus): list(s.speakers) for s in track.selections()}
    assert sel[("valid", "librispeech")] == selection.librispeech_valid(ls)
    assert sel[("train", "librispeech")] == selection.librispeech_train(ls)
    assert sel[("valid", "speechocean762")] == selection.so762_valid(so)
    assert sel[("train", "speechocean762")] == selection.so762_train(so)
    gender = {m["speaker"]: m["gender"] for m in meta["librispeech-mini"].values()}
    genders = Counter(gender[s] for s in sel[("valid", "librispeech")])
    assert genders == {"f": 3, "m": 3}


def test_vctk_mini_v2_sampling_shares():
    track = load_track("vctk-mini")
    rows = track.utterances(split="train")
    s = shares(track.sampling_weights(), rows)
    assert s["corpus"] == pytest.approx({"vctk": 0.10, "librispeech": 0.45, "speechocean762": 0.45})
    assert s["max_speaker"] == "p239" and s["max_speaker_share"] == pytest.approx(0.03)
    assert max(v for k, v in s["speaker"].items() if k != "p239") < 0.03
    lengths = {r.utt_id: r.seconds for r in rows}  # without the rule p239 alone would give a quarter
    assert sum(v for u, v in lengths.items() if u.startswith("p239")) / sum(lengths.values()) > 0.24


@pytest.mark.parametrize("name, n, speakers, per_speaker", [
    ("so762-test", 125, 125, 1), ("librispeech-test-other", 80, 10, 8)])
def test_only_test_tracks_follow_their_rules(shared_data, name, n, speakers, per_speaker):
    meta = _meta(shared_data)
    corpus = {"so762-test": "speechocean762-mini", "librispeech-test-other": "librispeech-mini"}[name]
    track = load_track(name)
    rows = track.utterances()
    assert track.test_only and len(rows) == n and {r.split for r in rows} == {"test"}
    assert len({r.speaker for r in rows}) == speakers
    assert set(Counter(r.speaker for r in rows).values()) == {per_speaker}
    assert sum(r.seconds for r in rows) <= 8 * 60
    pick = track.selections()[0].pick
    for spk in {r.speaker for r in rows}:  # re-derive the pick from the distribution's metadata
        cands = sorted((int(m["num_samples"]), u) for u, m in meta[corpus].items() if m["speaker"] == spk)
        want = {u for _, u in cands[pick["start"]:pick["start"] + pick["count"]]}
        assert {r.utt_id for r in rows if r.speaker == spk} == want
    for r in rows:
        m = meta[corpus][r.utt_id]
        assert m["sha256_pcm16"] == r.sha256_pcm16
        assert m.get("orig_split", "test") == "test" and m.get("subset", "test-other") == "test-other"
    all_speakers = sorted({m["speaker"] for m in meta[corpus].values()
                           if m.get("orig_split", m.get("subset")) in ("test", "test-other")})
    assert sorted(track.splits["test"]) == all_speakers


def test_make_tracks_check_passes(shared_data):
    import subprocess
    import sys

    import bench

    res = subprocess.run([sys.executable, "scripts/make_tracks.py", "--check", "--data-root", str(shared_data)],
                         cwd=bench.REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "differ from the rules: nothing" in res.stdout, res.stdout + res.stderr


def test_optional_manifest_columns_are_written_only_when_used():
    v1, v2, vb = load_archived("vctk-mini-v1"), load_track("vctk-mini"), load_track("vbdemand-sample")
    def header(t):
        return t.manifest_path.read_text().splitlines()[0].split(",")

    assert header(v1)[7:] == [] and header(v2)[7:] == ["corpus"] and header(vb)[7:] == list(OPTIONAL_COLUMNS[1:])
    assert json.loads((Path(v2.manifest_path).parents[1] / "tracks/vctk-mini.json").read_text())["version"] == 2


def test_test_only_track_prepares_its_test_split(multi, tmp_path):
    spec = {"name": "so-test", "version": 1, "split_id": "so-test-v1", "test_only": True,
            "corpus": {"layout": "speechocean762", "subdir": "so", "subset": "test"},
            "splits": {"test": {"speakers": ["SPEAKER0003"], "pick": {"by": "length", "start": 0, "count": 1}}},
            "manifest": None}
    validate_track_spec(spec)
    pt = prepare(Track(spec), PROTO, multi / "so", tmp_path / "prep", jobs=1)
    assert pt.noisy_splits == ("test",) and pt.info()["counts"] == {"train": 0, "valid": 0, "test": 1}
    assert pt.utt_ids("test") == ["000030000"] and pt.utt_ids("train") == []
    assert sorted(p.name for p in pt.noisy_dir.iterdir()) == ["manifest.csv", "prepared.json", "test"]
    u = "000030000"
    from bench.core.audio import to_pcm16

    assert np.array_equal(to_pcm16(pt.load_noisy("test", u)), to_pcm16(PROTO.apply(pt.load_clean("test", u), u)))


@pytest.mark.parametrize("name", ["so762-test", "librispeech-test-other"])
def test_real_test_only_tracks_prepare_to_the_committed_hashes(shared_data, tmp_path, name):
    from bench.data.verify import verify_prepared

    track = load_track(name)
    pt = prepare(track, PROTO, shared_data / track.corpus_dir, tmp_path, jobs=2)
    rep = verify_prepared(pt, jobs=2)
    assert rep.ok and any(f"{name}.stft-v1.csv" in n for n in rep.notes), rep.notes
