"""Balanced sampling of training segments: per-utterance draw probabilities from a track's ``"sampling"`` rule
(docs/tracks.md; without one the trainer draws proportional to length). They depend only on the manifest, so
batches stay a pure function of (seed, step)."""

from __future__ import annotations

from collections import defaultdict

from bench.data.manifest import Utterance
from bench.core.errors import DataError

RULES = ("corpus-shares-speaker-cap",)
TOL = 1e-9


def validate_rule(rule: dict, speakers_per_corpus: dict[str, int], source: str) -> None:
    """A track's sampling rule against its train split (`speakers_per_corpus`: its speakers per corpus)."""
    if rule.get("rule") not in RULES:
        raise DataError(f"{source}: unknown sampling rule {rule.get('rule')!r}; known: {', '.join(RULES)}")
    shares, cap = rule.get("corpus_shares") or {}, rule.get("max_speaker_share")
    if set(shares) != set(speakers_per_corpus):
        raise DataError(f"{source}: sampling corpus_shares name {sorted(shares)}, the train split draws on "
                        f"{sorted(speakers_per_corpus)}")
    if abs(sum(shares.values()) - 1.0) > 1e-6 or min(shares.values()) <= 0:
        raise DataError(f"{source}: sampling corpus_shares must be positive and sum to 1, got {shares}")
    if not isinstance(cap, (int, float)) or not 0 < cap <= 1:
        raise DataError(f"{source}: sampling max_speaker_share must be in (0, 1], got {cap!r}")
    for key, share in shares.items():
        if speakers_per_corpus.get(key, 0) * cap < share - 1e-12:
            raise DataError(f"{source}: corpus {key!r} has {speakers_per_corpus.get(key, 0)} train speakers; at most "
                            f"{cap:.3f} each they cannot make its share {share}")


def _water_fill(durations: dict[str, float], total: float, cap: float) -> dict[str, float]:
    """Shares summing to `total`, proportional to `durations`, none above `cap`."""
    shares: dict[str, float] = {}
    free = dict(durations)
    remaining = total
    while free:
        dsum = sum(free.values())
        prop = {k: remaining * d / dsum for k, d in free.items()}
        over = [k for k, s in prop.items() if s > cap + TOL]
        if not over:
            shares.update(prop)
            return shares
        for k in over:
            shares[k] = cap
            remaining -= cap
            del free[k]
    if remaining > TOL:
        raise DataError(f"every speaker is at the cap {cap} and {remaining:.4f} of the share is left")
    return shares


def sampling_weights(rule: dict, rows: list[Utterance]) -> dict[str, float]:
    """Train utterance id -> probability of being drawn for a segment (the values sum to 1)."""
    if rule.get("rule") not in RULES:
        raise DataError(f"unknown sampling rule {rule.get('rule')!r}; known: {', '.join(RULES)}")
    cap = float(rule["max_speaker_share"])
    by_corpus: dict[str, dict[str, list[Utterance]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_corpus[r.corpus][r.speaker].append(r)
    if set(by_corpus) != set(rule["corpus_shares"]):
        raise DataError(f"sampling rule names corpora {sorted(rule['corpus_shares'])}, the train rows come from "
                        f"{sorted(by_corpus)}")
    weights: dict[str, float] = {}
    for corpus, speakers in sorted(by_corpus.items()):
        dur = {spk: sum(u.seconds for u in utts) for spk, utts in speakers.items()}
        for spk, share in _water_fill(dur, float(rule["corpus_shares"][corpus]), cap).items():
            for u in speakers[spk]:
                weights[u.utt_id] = share * u.seconds / dur[spk]
    return weights


def shares(weights: dict[str, float], rows: list[Utterance]) -> dict:
    """Expected share of segments per corpus and per speaker, and the largest speaker share."""
    by_id = {r.utt_id: r for r in rows}
    corpus: dict[str, float] = defaultdict(float)
    speaker: dict[str, float] = defaultdict(float)
    for u, w in weights.items():
        corpus[by_id[u].corpus] += w
        speaker[by_id[u].speaker] += w
    top = max(speaker, key=speaker.get)
    return {"corpus": dict(sorted(corpus.items())), "speaker": dict(sorted(speaker.items())),
            "max_speaker": top, "max_speaker_share": speaker[top]}
