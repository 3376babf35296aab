"""The deterministic rules that chose the speakers of the vctk-mini v2 splits and the test-only tracks from
the shared corpora's metadata (``<corpus>/manifest.csv``): a test re-derives the frozen speaker lists with
them, `scripts/make_tracks.py` writes them. Ranking by ``sha256("<corpus>:<speaker>")`` gives a fixed order
unrelated to how the corpus numbered its speakers."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.core.files import read_csv

CHILD_AGE = 18  # speechocean762: speakers are 6-15 or 19-43 years old


def read_corpus_manifest(path: Path) -> list[dict]:
    return read_csv(path)


def hash_rank(corpus: str, speaker: str) -> str:
    return hashlib.sha256(f"{corpus}:{speaker}".encode()).hexdigest()


def _speakers(rows: list[dict], **where) -> dict[str, dict]:
    """Speaker -> its first row among those matching `where`."""
    return {r["speaker"]: r for r in reversed(rows) if all(r[k] == v for k, v in where.items())}


def librispeech_valid(rows: list[dict], per_gender: int = 3) -> list[str]:
    """train-clean-100 speakers held out for valid: the first `per_gender` women and men by hash rank."""
    spk = _speakers(rows, subset="train-clean-100")
    out = []
    for g in ("f", "m"):
        group = [s for s, r in spk.items() if r["gender"] == g]
        out += sorted(group, key=lambda s: hash_rank("librispeech", s))[:per_gender]
    return sorted(out)


def librispeech_train(rows: list[dict]) -> list[str]:
    valid = set(librispeech_valid(rows))
    return sorted(s for s in _speakers(rows, subset="train-clean-100") if s not in valid)


def so762_valid(rows: list[dict], per_stratum: int = 1) -> list[str]:
    """Train-split speakers held out for valid: per (child/adult, gender) stratum the first by hash rank."""
    spk = _speakers(rows, orig_split="train")
    out = []
    for child in (True, False):
        for g in ("f", "m"):
            group = [s for s, r in spk.items() if (int(r["age"]) < CHILD_AGE) == child and r["gender"] == g]
            out += sorted(group, key=lambda s: hash_rank("speechocean762", s))[:per_stratum]
    return sorted(out)


def so762_train(rows: list[dict]) -> list[str]:
    valid = set(so762_valid(rows))
    return sorted(s for s in _speakers(rows, orig_split="train") if s not in valid)


def so762_test(rows: list[dict]) -> list[str]:
    """Every speaker of the corpus's own test split."""
    return sorted(_speakers(rows, orig_split="test"))


def librispeech_test_other(rows: list[dict]) -> list[str]:
    return sorted(_speakers(rows, subset="test-other"))
