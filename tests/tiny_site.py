"""Real results for the listening-page tests (tests/test_site.py, tests/test_site_browser.py): a tiny custom
track (synthetic speech-like audio in a VCTK layout, 4 test utterances of 1.2 s), prepared under the real
stft-v1 protocol and two of its diagnostic protocols, and scored by the real scorer (bench.scoring.score) with
three real adapters (noisy, spectral-subtraction, oracle-psm), every output shipped as FLAC.

A custom track is no benchmark track, so `bench.board.rows.collect` would refuse its runs; the board is built
from the loaded runs directly (one row each, as `collect` would choose).
"""

from __future__ import annotations

from pathlib import Path

from bench.adapters.base import get_adapter
from bench.core.audio import to_pcm16
from bench.board.rows import Board, Row
from bench.data.prepare import prepare
from bench.data.tracks import Track
from bench.protocol import Protocol
from bench.scoring.results import load_run
from bench.scoring.score import score
from bench.adapters.speed import RTF_SECONDS
from bench.scoring.suite import Evaluation

from conftest import make_vctk_corpus, track_spec

TRACK = "tiny-site"
MODELS = ("noisy", "spectral-subtraction", "oracle-psm")
LABELS = {"noisy": "noisy", "spectral-subtraction": "spectral-subtraction", "oracle-psm": "oracle-psm"}
METRICS = ("pesq_wb", "si_sdr")
DIAGNOSTIC_OPS = (0, 5)   # zero_strongest, add_floor
SPEED = {"rtf_cpu_1thread": 0.0, "rtf_input_seconds": RTF_SECONDS, "causal": False, "latency_ms": None,
         "rtf_stream": None, "stream_chunk_samples": None}


def _score_all(pt, results: Path, role: str, ship: bool, models=MODELS) -> dict[str, object]:
    runs = {}
    for name in models:
        found = get_adapter(name)
        model = found.adapter.build(**found.adapter.config)
        ev = Evaluation(role, pt)
        out = results / TRACK / pt.protocol.name / name / "r1"
        score(found, model, ev, out, run_id="r1", config={"model": name}, budget={"trained": False}, speed=SPEED,
              weights=None, training=None, ship_outputs=ship, metrics=METRICS, jobs=1, device="cpu")
        runs[name] = load_run(out)
    return runs


def make_site_results(base: Path) -> tuple[Board, callable, object]:
    """(board, clean provider for bench.board.site.build, the prepared ranked set) with results under base/results."""
    corpus = make_vctk_corpus(base / "corpus", "0.92", speakers=("p225", "p226", "p227"), n_utts=4, duration=1.2)
    track = Track(track_spec(TRACK, "0.92", {"train": ["p225"], "valid": ["p226"], "test": ["p227"]}))
    main = prepare(track, Protocol.load(), corpus, base / "prepared", jobs=1)
    results = base / "results"
    key = f"{TRACK}/{main.protocol.name}"
    board = Board({}, {}, [], {})
    ranked = _score_all(main, results, "main", True)
    board.sets[key] = [Row(r, LABELS[m]) for m, r in ranked.items()]
    board.roles[key], board.noisy[key] = "main", ranked["noisy"]
    for i in DIAGNOSTIC_OPS:
        proto = Protocol.load().diagnostics()[i]
        pt = prepare(track, proto, corpus, base / "prepared", jobs=1)
        runs = _score_all(pt, results, "diagnostic", False, MODELS[:2])   # the heatmap shows systems only
        k = f"{TRACK}/{proto.name}"
        board.sets[k] = [Row(r, LABELS[m]) for m, r in runs.items()]
        board.roles[k], board.noisy[k] = "diagnostic", runs["noisy"]

    def clean(noisy_run, utt_id, page_copy):
        return to_pcm16(main.load_clean("test", utt_id))

    return board, clean, main


_BUILT: dict[str, tuple] = {}


def site_results(tmp_path_factory) -> tuple[Board, callable, object]:
    """`make_site_results` once per test session (shared by the page and browser tests)."""
    if "site" not in _BUILT:
        _BUILT["site"] = make_site_results(tmp_path_factory.mktemp("tiny-site"))
    return _BUILT["site"]
