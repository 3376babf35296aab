"""Tracks: speech from one or more corpora plus a frozen split by disjoint speakers. Each is one JSON spec in
``bench/data/tracks/`` and, once frozen, a committed manifest in ``bench/data/manifests/``; superseded versions
stay loadable from ``tracks/archive/<split_id>.json``. Spec forms and rules: docs/tracks.md."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from bench.corpora.layouts import ALL_LAYOUTS, SourceFile, marker_dirs, scan
from bench.core.errors import BenchError, DataError
from bench.core.files import file_sha256
from bench.core.names import TRACK_RE, validate_track_name
from bench.data.manifest import SPLITS, Utterance, read_manifest
from bench.data.sampling import sampling_weights, validate_rule

TRACK_DIR = Path(__file__).resolve().parent / "tracks"
MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
ARCHIVE = "archive"
DEFAULT_TRACK = "vctk-mini"


def _current_specs() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(TRACK_DIR.glob("*.json"))}


def available_tracks() -> list[str]:
    """The benchmark tracks (train/valid/test): one leaderboard section each."""
    return sorted(n for n, s in _current_specs().items() if not s.get("test_only"))


def only_test_tracks() -> list[str]:
    """The test-only tracks: evaluation sets listed by benchmark tracks."""
    return sorted(n for n, s in _current_specs().items() if s.get("test_only"))


def all_tracks() -> list[str]:
    return sorted(_current_specs())


@dataclass(frozen=True)
class Selection:
    """The speakers one split takes from one corpus, and how their utterances are chosen."""

    split: str
    corpus: str                  # key in Track.corpora; "" in a single-corpus track
    speakers: tuple[str, ...]
    subset: str | None = None    # librispeech / speechocean762: the subset (split) folder
    pick: dict | None = None     # e.g. {"by": "length", "start": 1, "count": 1}; None = every utterance


@dataclass(frozen=True)
class Track:
    spec: dict = field(repr=False)
    archived: bool = False

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def version(self) -> int:
        return int(self.spec["version"])

    @property
    def split_id(self) -> str:
        return self.spec["split_id"]

    # ---- corpora -----------------------------------------------------------------------------
    @property
    def corpora(self) -> dict[str, dict]:
        return dict(self.spec["corpora"]) if "corpora" in self.spec else {"": self.spec["corpus"]}

    @property
    def primary_corpus(self) -> str:
        return next(iter(self.corpora))

    def corpus_dir_of(self, key: str) -> str:
        return self.corpora[key].get("subdir") or (self.spec.get("download") or {}).get("extract_to") or self.name

    def markers_of(self, key: str) -> list[str]:
        c = self.corpora[key]
        subsets = sorted({s.subset for s in self.selections() if s.corpus == key and s.subset})
        return marker_dirs(c["layout"], subsets=subsets, clean_dir=c.get("clean_dir", "clean"))

    @property
    def layout(self) -> str:  # single-corpus tracks (and the primary corpus of others)
        return self.corpora[self.primary_corpus]["layout"]

    @property
    def mic(self) -> str:
        return self.corpora[self.primary_corpus].get("mic", "mic1")

    @property
    def corpus_dir(self) -> str:
        return self.corpus_dir_of(self.primary_corpus)

    def roots(self, corpus_root: Path | Mapping[str, Path]) -> dict[str, Path]:
        """Corpus key -> folder, from a mapping, a single-corpus track's folder, or a data root of corpus folders."""
        if isinstance(corpus_root, Mapping):
            if missing := set(self.corpora) - set(corpus_root):
                raise DataError(f"track {self.name}: no folder given for corpus(es) {', '.join(sorted(missing))}")
            return {k: Path(v) for k, v in corpus_root.items()}
        root = Path(corpus_root)
        if len(self.corpora) == 1:
            return {self.primary_corpus: root}
        return {k: root / self.corpus_dir_of(k) for k in self.corpora}

    def source_path(self, corpus_root, utt: Utterance, *, noisy: bool = False) -> Path:
        return self.roots(corpus_root)[utt.corpus or self.primary_corpus] / (utt.noisy_path if noisy else utt.path)

    def scan_files(self, sel: Selection, root: Path, *, strict: bool = True) -> list[SourceFile]:
        """The files `sel` takes from its corpus folder `root` (`bench.corpora.layouts.scan`)."""
        c = self.corpora[sel.corpus]
        return scan(root, list(sel.speakers), layout=c["layout"], mic=c.get("mic", "mic1"), subset=sel.subset,
                    pick=sel.pick, clean_dir=c.get("clean_dir", "clean"), noisy_dir=c.get("noisy_dir", "noisy"),
                    strict=strict)

    # ---- splits ------------------------------------------------------------------------------
    @property
    def test_only(self) -> bool:
        return bool(self.spec.get("test_only"))

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(s for s in SPLITS if s in self.spec["splits"])

    def selections(self, split: str | None = None) -> list[Selection]:
        """The selections of `split` (None: all), splits in `SPLITS` order, corpora in spec order."""
        order = {sp: i for i, sp in enumerate(self.split_names)}
        raw = [r for r in _raw_selections(self.spec) if r[0] in order and split in (None, r[0])]
        return [Selection(sp, key, tuple(v["speakers"]), v.get("subset", self.corpora.get(key, {}).get("subset")),
                          v.get("pick")) for sp, key, v in sorted(raw, key=lambda r: order[r[0]])]

    @property
    def splits(self) -> dict[str, list[str]]:
        """Split -> its speakers (over all corpora)."""
        return {sp: [s for sel in self.selections(sp) for s in sel.speakers] for sp in self.split_names}

    def split_of(self, speaker: str) -> str:
        for split, spks in self.splits.items():
            if speaker in spks:
                return split
        raise DataError(f"speaker {speaker} is in no split of track {self.name}")

    @property
    def speakers(self) -> list[str]:
        return [s for split in self.split_names for s in self.splits[split]]

    # ---- noise, sampling, evaluation ------------------------------------------------------------
    @property
    def recorded(self) -> bool:
        """True when the noisy audio is a recording given by the corpus (no protocol)."""
        return (self.spec.get("noise") or {}).get("kind") == "recorded"

    @property
    def sampling(self) -> dict | None:
        return self.spec.get("sampling")

    def sampling_weights(self, prepared_dir: Path | None = None) -> dict[str, float] | None:
        """Train utterance -> its draw probability by the track's sampling rule; None without a rule."""
        return sampling_weights(self.sampling, self.utterances(prepared_dir, split="train")) if self.sampling else None

    @property
    def evaluation_tracks(self) -> list[str]:
        return list((self.spec.get("evaluation") or {}).get("tracks", []))

    @property
    def tiers(self) -> list[str]:
        """Further protocols (noise tiers) whose frozen test sets every model of this track is scored on."""
        return list((self.spec.get("evaluation") or {}).get("tiers", []))

    @property
    def diagnostics(self) -> bool:
        return bool((self.spec.get("evaluation") or {}).get("diagnostics"))

    # ---- files ----------------------------------------------------------------------------------
    @property
    def prepared_dirname(self) -> str:
        """The folder of the track in a prepared dir: its name; an archived version uses its split id."""
        return self.split_id if self.archived else self.name

    def get_data_command(self) -> str:
        if self.spec.get("download"):
            return f"run `bench data download {self.name}` (or pass --data-root to a folder holding {self.corpus_dir}/)"
        dirs = ", ".join(f"{self.corpus_dir_of(k)}/" for k in self.corpora)
        return (f"the {self.name} corpora ship beside the repository in ../shared/data ({dirs}); "
                f"pass `--data-root /path/to/data` or set BENCH_DATA_ROOT to the folder holding {dirs}")

    @property
    def manifest_path(self) -> Path | None:
        m = self.spec.get("manifest")
        return MANIFEST_DIR / m if m else None

    def reference_noisy_path(self, noise_name: str) -> Path:
        """Committed reference hashes of the prepared noisy sets: ``<manifest stem>.<noise name>.csv``."""
        stem = self.manifest_path.stem if self.manifest_path else self.name
        return MANIFEST_DIR / f"{stem}.{noise_name}.csv"

    @property
    def frozen(self) -> bool:
        return self.manifest_path is not None and self.manifest_path.exists()

    def manifest_file(self, prepared_dir: Path | None = None) -> Path:
        """The manifest in force: the committed one, or for an unfrozen track the one written at first prepare."""
        if self.frozen:
            return self.manifest_path
        if prepared_dir is not None:
            p = Path(prepared_dir) / self.prepared_dirname / "source_manifest.csv"
            if p.exists():
                return p
        raise DataError(f"track {self.name} has no frozen manifest yet and has not been prepared",
                        hint=f"run `bench data prepare --track {self.name}` first")

    def utterances(self, prepared_dir: Path | None = None, split: str | None = None) -> list[Utterance]:
        return [r for r in read_manifest(self.manifest_file(prepared_dir)) if split is None or r.split == split]

    def record(self, prepared_dir: Path | None = None) -> dict:
        """What results store about the track and its split."""
        return {"name": self.name, "version": self.version, "split_id": self.split_id,
                "manifest_sha256": file_sha256(self.manifest_file(prepared_dir)), "frozen": self.frozen}


def _raw_selections(spec: dict) -> list[tuple[str, str, dict]]:
    return [(split, key, {"speakers": v} if isinstance(v, list) else v) for split, entry in spec["splits"].items()
            for key, v in (entry.items() if "corpora" in spec else [("", entry)])]


def validate_track_spec(spec: dict, source: str = "track spec") -> None:
    for key in ("name", "version", "split_id", "splits"):
        if key not in spec:
            raise DataError(f"{source}: missing field {key!r}")
    for key in ("name", "split_id"):   # folder names under prepared/, results/ and runs/
        try:
            validate_track_name(spec[key])
        except BenchError as exc:
            raise DataError(f"{source}: field {key!r}: {exc.message}", hint=exc.hint) from None
    if ("corpus" in spec) == ("corpora" in spec):
        raise DataError(f"{source}: missing field 'corpus'" if "corpora" not in spec else
                        f"{source}: give either 'corpus' or 'corpora', not both")
    corpora = spec.get("corpora") or {"": spec["corpus"]}
    for key, c in corpora.items():
        if c.get("layout") not in ALL_LAYOUTS:
            raise DataError(f"{source}: corpus {key or spec['name']!r} has unknown layout {c.get('layout')!r}; "
                            f"known: {', '.join(ALL_LAYOUTS)}")
    if unknown := set(spec["splits"]) - set(SPLITS):
        raise DataError(f"{source}: unknown split(s) {sorted(unknown)}; splits are {', '.join(SPLITS)}")
    wanted = ("test",) if spec.get("test_only") else SPLITS
    if spec.get("test_only") and set(spec["splits"]) != {"test"}:
        raise DataError(f"{source}: a test-only track has only a test split, found {sorted(spec['splits'])}")
    for split in wanted:
        if split not in spec["splits"] or not spec["splits"][split]:
            raise DataError(f"{source}: split {split!r} has no speakers")
    seen: dict[str, tuple[str, str]] = {}
    for split, key, sel in _raw_selections(spec):
        if key not in corpora:
            raise DataError(f"{source}: split {split} draws on corpus {key!r}, which is not in 'corpora'")
        if not sel.get("speakers"):
            raise DataError(f"{source}: split {split!r} has no speakers" + (f" of corpus {key}" if key else ""))
        for spk in sel["speakers"]:
            if spk in seen:
                s2, k2 = seen[spk]
                what = (f"both {s2} and {split}; splits must be disjoint" if s2 != split or k2 == key
                        else f"both corpora {k2} and {key} of {split}; speaker ids must be unique")
                raise DataError(f"{source}: speaker {spk} is in {what}")
            seen[spk] = (split, key)
    if (noise := spec.get("noise")) is not None:
        if noise.get("kind") != "recorded":
            raise DataError(f"{source}: unknown noise kind {noise.get('kind')!r}; only 'recorded' (pairs) is defined")
        if not spec.get("test_only") or any(c["layout"] != "pairs" for c in corpora.values()):
            raise DataError(f"{source}: recorded noise needs a test-only track on a corpus of clean/noisy pairs")
    if spec.get("sampling"):
        train = Counter(key for split, key, sel in _raw_selections(spec) if split == "train" for _ in sel["speakers"])
        validate_rule(spec["sampling"], train, source)


def _read_spec(path: Path) -> dict:
    spec = json.loads(path.read_text())
    validate_track_spec(spec, str(path))
    return spec


@lru_cache(maxsize=None)
def load_track(name: str = DEFAULT_TRACK) -> Track:
    """The current version of a track, by its registered name (a file name in `TRACK_DIR`, never a path)."""
    path = TRACK_DIR / f"{name}.json"
    if not isinstance(name, str) or not TRACK_RE.match(name) or ".." in name or not path.is_file():
        raise DataError(f"unknown track {name!r}", hint=f"available: {', '.join(all_tracks())}")
    spec = _read_spec(path)
    if spec["name"] != name:
        raise DataError(f"{path}: its name {spec['name']!r} differs from its file name {name!r}")
    return Track(spec)


def archived_split_ids() -> list[str]:
    return sorted(p.stem for p in (TRACK_DIR / ARCHIVE).glob("*.json"))


@lru_cache(maxsize=None)
def load_archived(split_id: str) -> Track:
    """A superseded version of a track, by its split id (e.g. ``vctk-mini-v1``)."""
    path = TRACK_DIR / ARCHIVE / f"{split_id}.json"
    if not path.exists():
        raise DataError(f"no archived track version {split_id!r}",
                        hint=f"archived: {', '.join(archived_split_ids()) or 'none'}")
    spec = _read_spec(path)
    if spec["split_id"] != split_id:
        raise DataError(f"{path}: split_id {spec['split_id']!r} does not match its file name")
    return Track(spec, archived=True)


def track_version(name: str, split_id: str | None = None) -> Track:
    """The version of track `name` that a result with `split_id` was made on: an archived version when
    `split_id` names one of this track, else the current version (against which such a result is refused)."""
    current = load_track(name)
    if split_id is None or split_id == current.split_id or split_id not in archived_split_ids():
        return current
    old = load_archived(split_id)
    return old if old.name == name else current
