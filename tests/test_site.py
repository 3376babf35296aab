"""Tests of the listening page (bench/board/site.py, bench/board/site_media.py) on real results of a tiny custom track
(tests/tiny_site.py: real protocol, real scorer, three real adapters, every output shipped): which files it
writes, that every link and player source resolves, the utterance rule, byte-identical re-rendering, the
clean reference, the heatmap, and the sync check that `bench leaderboard --check` runs in CI. The page in a
real browser: tests/test_site_browser.py.
"""

from __future__ import annotations

import html
import re
import shutil
import struct
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from bench.board import leaderboard, site
from bench.cli.main import main
from bench.core.errors import BenchError
from bench.board.site_media import SPEC_HEIGHT, SPEC_WIDTH, choose_utterances, flac_bytes, read_pcm16, spectrogram_png

from tiny_site import TRACK, site_results

KEY = f"{TRACK}/stft-v1"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return site_results(tmp_path_factory)


@pytest.fixture
def page(tiny, tmp_path):
    """The page rendered into tmp_path/site (beside the results, as site/ is beside results/ in the repo)."""
    board, clean, _ = tiny
    out = tmp_path / "site"
    files = site.render_site(board, out, clean)
    return out, files, (out / "index.html").read_text()


def committed_results(tmp_path: Path) -> Path:
    from bench.scoring.results import RESULTS_DIR

    return Path(shutil.copytree(RESULTS_DIR, tmp_path / "results"))


def _attr(page_html: str, tag: str, attr: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(rf"<{tag}\b[^>]*?\b{attr}=\"([^\"]*)\"", page_html)]


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        out.append(data[i + 4:i + 8])
        i += 12 + n
    return out


# ---------------------------------------------------------------------------------------------
def test_page_has_a_table_per_set_and_players_for_every_model(tiny, page):
    board, _, _ = tiny
    out, files, text = page
    for key in board.sets:
        assert f'id="t-{site._slug(key)}"' in text, key
    audio = _attr(text, "audio", "src")
    utts = choose_utterances(board.noisy[KEY])
    assert len(utts) == 3 and len(audio) == 3 * 4          # clean, noisy, spectral-subtraction, oracle-psm
    for which, utt, _ in utts:
        srcs = [a for a in audio if utt in a]
        assert srcs[0] == f"audio/{TRACK}/{utt}.flac"
        assert sorted(Path(s).parts[-4] for s in srcs[1:]) == ["noisy", "oracle-psm", "spectral-subtraction"]
        assert f"{which} noisy PESQ-WB" in text
    assert "lowest, the median and the highest PESQ-WB of the noisy input" in text   # the rule is stated


def test_every_link_and_source_resolves_to_a_file(tiny, page):
    board, _, _ = tiny
    out, files, text = page
    targets = _attr(text, "audio", "src") + _attr(text, "img", "src") + \
        [h for h in _attr(text, "a", "href") if not h.startswith("#")]
    assert len(targets) > 20
    for t in targets:
        p = (out / unquote(t)).resolve()
        assert p.is_file(), t
    # model outputs are linked from the results folders, not copied into the page
    results = board.noisy[KEY].path.parents[3].resolve()
    assert all((out / unquote(t)).resolve().is_relative_to(results) for t in _attr(text, "audio", "src")
               if not t.startswith("audio/"))
    assert not any(p.endswith(".flac") and not p.startswith("audio/") for p in files)


def test_summary_links_point_at_each_runs_summary(tiny, page):
    board, _, _ = tiny
    out, _, text = page
    links = {(out / unquote(h)).resolve() for h in _attr(text, "a", "href") if h.endswith("summary.json")}
    assert links == {(r.run.path / "summary.json").resolve() for rows in board.sets.values() for r in rows}


def test_utterance_rule_lowest_median_highest_noisy_pesq(tiny):
    board, _, _ = tiny
    df = board.noisy[KEY].per_utterance.sort_values(["pesq_wb", "utt_id"])
    ids = list(df["utt_id"])
    assert [u for _, u, _ in choose_utterances(board.noisy[KEY])] == [ids[0], ids[(len(ids) - 1) // 2], ids[-1]]


def test_rendering_twice_gives_identical_bytes(tiny, tmp_path):
    board, clean, _ = tiny
    a = site.render_site(board, tmp_path / "a" / "site", clean)
    b = site.build(board, tmp_path / "a" / "site", clean)
    assert a == b
    c = site.render_site(board, tmp_path / "a" / "site", clean)   # over itself: nothing changes
    assert c == a and site.check_site(board, tmp_path / "a" / "site", clean) == []


def test_clean_reference_is_the_prepared_audio(tiny, page):
    _, _, pt = tiny
    out, files, _ = page
    clean = sorted(p for p in files if p.startswith("audio/"))
    assert len(clean) == 3
    for p in clean:
        utt = Path(p).stem
        assert np.array_equal(read_pcm16(out / p), np.round(pt.load_clean("test", utt) * 32768).astype(np.int16))


def test_spectrograms_are_small_palette_pngs_without_metadata(tiny, page):
    out, files, _ = page
    pngs = [p for p in files if p.startswith("spectrograms/")]
    assert len(pngs) == 12
    from PIL import Image

    for p in pngs:
        data = files[p]
        assert len(data) < 40_000
        chunks = png_chunks(data)
        assert not {b"tEXt", b"iTXt", b"zTXt", b"tIME"} & set(chunks), chunks
        with Image.open(out / p) as im:
            assert im.size == (SPEC_WIDTH, SPEC_HEIGHT) and im.mode == "P"
    # a different signal gives a different picture; the same one the same bytes
    utt = Path(pngs[0]).parent.name
    q = read_pcm16(out / f"audio/{TRACK}/{utt}.flac")
    assert spectrogram_png(q) == files[f"spectrograms/{TRACK}/{utt}/clean.png"]
    assert spectrogram_png(q // 4) != spectrogram_png(q)


def test_diagnostics_heatmap_and_table(tiny, page):
    board, _, _ = tiny
    out, files, text = page
    heat = f"diagnostics-{TRACK}.png"
    assert heat in files and f'src="{heat}"' in text
    assert not {b"tEXt", b"iTXt", b"tIME"} & set(png_chunks(files[heat]))
    rows, ops, delta, _, _ = site.diagnostics(board, KEY)
    assert [r.label for r in rows] == ["spectral-subtraction"] and ops == ["zero_strongest", "add_floor"]
    want = [r.run.summary["metrics"]["pesq_wb"]["delta"] for op in ops for r in board.rows(f"{KEY}.only-{op}")
            if r.run.model == "spectral-subtraction"]
    assert np.allclose(delta[0], want)


def test_row_order_is_the_leaderboards(tiny):
    board, _, _ = tiny
    rows = board.rows(KEY)
    assert [r.label for r in site.ordered(rows)] == [r.label for r in leaderboard.ordered(rows)]
    assert [r.label for r in site.ordered(rows)] == ["spectral-subtraction", "noisy", "oracle-psm"]


def test_a_missing_output_is_shown_not_hidden(tiny, tmp_path):
    board, clean, _ = tiny
    row = next(r for r in board.rows(KEY) if r.run.model == "spectral-subtraction")
    utt = choose_utterances(board.noisy[KEY])[0][1]
    moved = tmp_path / "moved.flac"
    src = row.run.path / "enhanced" / f"{utt}.flac"
    shutil.move(src, moved)
    try:
        text = site.build(board, tmp_path / "site", clean)["index.html"].decode()
    finally:
        shutil.move(moved, src)
    assert "output file missing" in text and len(_attr(text, "audio", "src")) == 3 * 4 - 1


def test_check_finds_edited_missing_and_extra_files(tiny, page):
    board, clean, _ = tiny
    out, files, _ = page
    assert site.check_site(board, out, clean) == []
    png, gone = [p for p in files if p.startswith("spectrograms/")][:2]
    (out / png).write_bytes(files[png][:-1] + b"\0")
    (out / gone).unlink()
    (out / "notes.txt").write_text("hand-made")
    problems = site.check_site(board, out, clean)
    assert sorted(problems) == sorted([f"site/{png}: differs from a fresh rendering", f"site/{gone}: missing",
                                       "site/notes.txt: not part of the page (extra file)"])
    site.render_site(board, out, clean)           # rewriting repairs it and removes the extra file
    assert site.check_site(board, out, clean) == [] and not (out / "notes.txt").exists()


def test_a_foreign_folder_is_not_replaced(tiny, tmp_path):
    board, clean, _ = tiny
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "mine.txt").write_text("keep me")
    with pytest.raises(BenchError, match="not a page written by"):
        site.render_site(board, tmp_path / "site", clean)
    assert (tmp_path / "site" / "mine.txt").read_text() == "keep me"


def test_the_size_budget_is_enforced(tiny, tmp_path, monkeypatch):
    board, clean, _ = tiny
    monkeypatch.setattr(site, "BUDGET_BYTES", 100_000)
    with pytest.raises(BenchError, match="over its budget"):
        site.build(board, tmp_path / "site", clean)


def test_no_players_when_the_noisy_run_ships_no_outputs(tmp_path):
    """The committed (archived, schema v1) runs ship no outputs: tables only, and the page needs no audio."""
    from bench.board.rows import collect

    import json

    results = committed_results(tmp_path)
    for d in list(results.glob("*/*/*/*")):      # the archived runs only
        if json.loads((d / "summary.json").read_text())["schema_version"] != 1:
            shutil.rmtree(d)
    board = collect(results)
    assert board.archived and not board.sets
    text = site.build(board, tmp_path / "site")["index.html"].decode()
    assert "<audio" not in text and "<table class=sortable" in text


def test_leaderboard_writes_and_checks_the_page(tmp_path, capsys):
    results = committed_results(tmp_path)
    out = tmp_path / "leaderboard.md"
    assert main(["leaderboard", "--results-dir", str(results), "--output", str(out)]) == 0
    assert (tmp_path / "site" / "index.html").exists()
    assert main(["leaderboard", "--check", "--results-dir", str(results), "--output", str(out)]) == 0
    (tmp_path / "site" / "index.html").write_text((tmp_path / "site" / "index.html").read_text() + "<!-- edit -->")
    assert main(["leaderboard", "--check", "--results-dir", str(results), "--output", str(out)]) == 1
    assert "site/index.html: differs from a fresh rendering" in capsys.readouterr().err


def test_an_existing_clean_copy_with_the_same_samples_keeps_its_bytes(tiny, page):
    """FLAC encoders (libFLAC versions, settings) differ in bytes, not samples: the page keeps its copy."""
    import soundfile as sf

    board, clean, _ = tiny
    out, files, _ = page
    p = out / next(f for f in files if f.startswith("audio/"))
    q = read_pcm16(p)
    sf.write(str(p), q, 16000, format="FLAC", subtype="PCM_16", compression_level=0.0)
    other = p.read_bytes()
    assert other != files[p.relative_to(out).as_posix()]
    assert site.render_site(board, out, clean)[p.relative_to(out).as_posix()] == other == p.read_bytes()
    p.write_bytes(flac_bytes(q // 2))                      # other samples: replaced by the reference
    assert not np.array_equal(read_pcm16(p), q)
    site.render_site(board, out, clean)
    assert np.array_equal(read_pcm16(p), q)


def test_clean_reference_is_checked_against_the_frozen_manifest(vctk_mini, tmp_path, monkeypatch):
    """The default source of the clean audio: the page's copy when its samples have the manifest's hash,
    else the prepared track; anything else is refused with the command that prepares it."""
    from bench.board.site_media import clean_samples

    monkeypatch.setenv("BENCH_PREPARED_DIR", str(tmp_path / "no-prepared"))
    copy = tmp_path / "p232_003.flac"
    shutil.copyfile(vctk_mini / "wav48" / "p232" / "p232_003.flac", copy)   # the corpus file is 16 kHz
    q = clean_samples("vctk-mini", "vctk-mini-v2", "p232_003", (copy,))
    assert np.array_equal(q, read_pcm16(copy))
    copy.write_bytes(flac_bytes(q[:-1]))
    # a wrong page copy is passed over: the corpus file (16 kHz in vctk-mini) has the manifest's samples
    assert np.array_equal(clean_samples("vctk-mini", "vctk-mini-v2", "p232_003", (copy,)), q)
    monkeypatch.setenv("BENCH_DATA_ROOT", str(tmp_path / "no-data"))
    monkeypatch.setattr("bench.corpora.root.candidate_roots", lambda cli_root: [("none", tmp_path / "no-data")])
    with pytest.raises(BenchError, match="matching the frozen manifest") as err:
        clean_samples("vctk-mini", "vctk-mini-v2", "p232_003", (copy,))
    assert "bench data prepare --track vctk-mini" in err.value.hint


def test_media_cache_gives_the_drawn_bytes_and_reads_them_back(tiny, tmp_path):
    """The page rendered through a MediaCache equals the one drawn every time; the second rendering reads the
    images from the cache (a forged entry comes back, so nothing was drawn), and a changed input is another
    key (drawn again)."""
    from bench.board.site_media import MediaCache

    board, clean, _ = tiny
    drawn = site.build(board, tmp_path / "site", clean)
    media = MediaCache(tmp_path / "cache")
    assert site.build(board, tmp_path / "site", clean, media) == drawn
    kept = sorted(media.folder.glob("*.png"))
    assert len(kept) == sum(p.endswith(".png") for p in drawn) > 0
    for p in kept:
        p.write_bytes(b"forged")
    assert {v for k, v in site.build(board, tmp_path / "site", clean, media).items() if k.endswith(".png")} == {b"forged"}
    x = (np.arange(16000) % 200 * 50).astype(np.int16)
    assert media(spectrogram_png, x) == spectrogram_png(x) != media(spectrogram_png, x[::-1].copy())
    assert media.folder == MediaCache(tmp_path / "cache").folder   # the code key is stable
