"""The listening page in a real browser: headless Chromium (Debian's ``chromium`` package) driven over the
DevTools protocol (tests/browser.py), with the page opened from ``file://`` as a reader would.

Checks, on the page of the tiny track's real results (tests/tiny_site.py) and on the committed site/: every
table renders with rows, every <audio> element loads its file (the page's own script marks each player
``data-state="ok"`` on ``loadedmetadata`` or ``"error"`` on ``error``), every image decodes, clicking a column
header sorts the rows within their group (systems, the noisy input, oracles), at a 400-px width the page does
not pan sideways (tables scroll in their own box), the A/B switch plays another player from the same position,
a marked model's players carry the mark, no script error. Saves a screenshot of the committed page (to
$BENCH_SITE_SCREENSHOT when set: docs/site-screenshot.png for the README).

Skipped, with the reason, where no Chromium is installed (``apt-get install chromium``; or point
$BENCH_CHROMIUM at a binary), except under CI=true (.ci/run installs it), where that is a failure.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bench.board import site

from browser import Chromium, find_chromium
from tiny_site import TRACK, site_results

CHROMIUM = find_chromium()
REQUIRED = os.environ.get("CI") == "true"
SCREEN = (1280, 1000)

ALL_LOADED = "[...document.querySelectorAll('audio')].every(a => a.dataset.state)"
STATE = """(() => ({
  tables: [...document.querySelectorAll('table.sortable')].map(t => [t.id, t.tBodies[0].rows.length,
           t.getBoundingClientRect().height]),
  audio: [...document.querySelectorAll('audio')].map(a => [a.getAttribute('src'), a.dataset.state, a.duration]),
  images: [...document.querySelectorAll('img')].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
  flac: document.createElement('audio').canPlayType('audio/flac'),
}))()"""


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if REQUIRED:
            pytest.fail("CI=true but no Chromium found (.ci/run installs it: apt-get install chromium)")
        pytest.skip("no Chromium found: `apt-get install chromium` (or set BENCH_CHROMIUM) to run the browser test")
    with Chromium(CHROMIUM, width=SCREEN[0], height=SCREEN[1]) as b:
        yield b


@pytest.fixture(scope="module")
def tiny_page(tmp_path_factory):
    board, clean, _ = site_results(tmp_path_factory)
    out = tmp_path_factory.mktemp("browser") / "site"
    site.render_site(board, out, clean)
    return board, out / "index.html"


def load(browser: Chromium, index: Path) -> dict:
    browser.open(index.resolve().as_uri())
    browser.wait_for(ALL_LOADED, timeout=60)
    state = browser.eval(STATE)
    assert browser.console_errors() == []
    return state


def assert_renders(state: dict, n_tables: int) -> None:
    assert len(state["tables"]) == n_tables
    for table_id, rows, height in state["tables"]:
        assert rows >= 1 and height > 20, table_id
    bad = [(src, s) for src, s, _ in state["audio"] if s != "ok"]
    assert bad == [], f"players that did not load: {bad}"
    assert all(done and width > 0 for _, done, width in state["images"]), state["images"]


def test_tiny_page_renders_every_table_and_player(browser, tiny_page):
    board, index = tiny_page
    state = load(browser, index)
    assert state["flac"] in ("probably", "maybe")
    assert_renders(state, n_tables=len(board.sets) + 2)       # + the runs table and the diagnostics table
    assert len(state["audio"]) == 12
    assert all(1.1 < duration < 1.3 for _, _, duration in state["audio"])   # 1.2 s utterances, decoded
    spectrograms = [w for src, _, w in state["images"] if src.startswith("spectrograms/")]
    assert spectrograms == [320] * 12


def test_a_missing_file_is_reported_by_the_player(browser, tiny_page, tmp_path):
    _, index = tiny_page
    moved = tmp_path / "index.html"       # the same page elsewhere: none of its relative sources exist
    moved.write_text(index.read_text())
    browser.open(moved.as_uri())
    browser.wait_for(ALL_LOADED, timeout=60)
    assert browser.eval("[...document.querySelectorAll('audio')].map(a => a.dataset.state)") == ["error"] * 12
    assert "cannot load" in browser.eval("document.querySelector('.state.bad').textContent")


def _column(browser: Chromium, table: str, col: int) -> list:
    return browser.eval(f"[...document.getElementById('{table}').tBodies[0].rows].map(r => "
                        f"[r.dataset.model, r.cells[{col}].dataset.v])")


def test_clicking_a_header_sorts_the_rows(browser, tiny_page):
    _, index = tiny_page
    load(browser, index)
    table = f"t-{site._slug(f'{TRACK}/stft-v1')}"
    heads = browser.eval(f"[...document.getElementById('{table}').tHead.rows[0].cells].map(c => c.textContent)")
    col = heads.index("SI-SDR (dB)")
    before = _column(browser, table, col)
    assert [m for m, _ in before] == ["spectral-subtraction", "noisy", "oracle-psm"]   # by PESQ-WB
    click = f"document.getElementById('{table}').tHead.rows[0].cells[{col}].click()"
    browser.eval(click)
    assert browser.eval(f"document.getElementById('{table}').tHead.rows[0].cells[{col}].getAttribute('aria-sort')") \
        == "descending"
    # one row per group here: the oracle's best SI-SDR never lifts it above the system or the noisy input
    assert _column(browser, table, col) == before
    browser.eval(click)
    assert _column(browser, table, col) == before


def test_sorting_keeps_systems_noisy_and_oracles_apart(browser):
    load(browser, site.SITE_DIR / "index.html")
    table = "t-vctk-mini-stft-v1"
    heads = browser.eval(f"[...document.getElementById('{table}').tHead.rows[0].cells].map(c => c.textContent)")
    col = heads.index("PESQ-WB")
    groups = f"[...document.getElementById('{table}').tBodies[0].rows].map(r => +r.dataset.group)"
    for direction in ("descending", "ascending"):
        browser.eval(f"document.getElementById('{table}').tHead.rows[0].cells[{col}].click()")
        g = browser.eval(groups)
        assert g == sorted(g) and g[0] == 0 and g[-1] == 2, g
        values = [float(v) for (_, v), k in zip(_column(browser, table, col), g) if k == 0]
        assert values == sorted(values, reverse=direction == "descending")


def test_a_narrow_screen_does_not_pan_sideways(browser):
    load(browser, site.SITE_DIR / "index.html")
    browser.call("Emulation.setDeviceMetricsOverride", session=True, width=400, height=800, deviceScaleFactor=1,
                 mobile=True)
    try:
        width = browser.eval("document.documentElement.scrollWidth")
        boxes = browser.eval("[...document.querySelectorAll('table')].every(t => t.parentElement.className === "
                             "'scroll' && t.parentElement.getBoundingClientRect().width <= 400)")
    finally:
        browser.call("Emulation.clearDeviceMetricsOverride", session=True)
    assert width <= 400 and boxes


def test_ab_switch_plays_another_player_from_the_same_position(browser, tiny_page):
    _, index = tiny_page
    load(browser, index)
    players = "[...document.querySelector('.ab').nextElementSibling.querySelectorAll('.player')]"
    labels = browser.eval(f"{players}.map(p => p.dataset.label)")
    assert labels[:2] == ["clean (reference)", "noisy (input)"]
    assert browser.eval("document.querySelector('.ab-a').value") == labels[2]
    browser.eval(f"(() => {{ const a = {players}[1].querySelector('audio'); a.currentTime = 0.5; "
                 "a.dataset.active = '1'; })()")
    browser.eval("document.querySelector('.ab button[data-to=a]').click()")
    state = browser.eval(f"{players}.map(p => [p.querySelector('audio').currentTime, "
                         "p.querySelector('audio').dataset.active || ''])")
    assert state[2][1] == "1" and abs(state[2][0] - 0.5) < 0.05, state
    assert [a for _, a in state].count("1") == 1
    browser.eval("document.querySelector('.ab button[data-to=clean]').click()")
    t, active = browser.eval(f"[{players}[0].querySelector('audio').currentTime, "
                             f"{players}[0].querySelector('audio').dataset.active]")
    assert active == "1" and t >= 0.45


def test_committed_page_renders_and_screenshot(browser, tmp_path):
    index = site.SITE_DIR / "index.html"
    assert index.exists(), "site/index.html is missing: run `bench leaderboard`"
    state = load(browser, index)
    ids = re.findall(r'<table class=sortable id="([^"]+)"', index.read_text())
    assert ids and [t[0] for t in state["tables"]] == ids
    assert_renders(state, n_tables=len(ids))
    assert browser.eval("document.body.textContent.includes('outputs not shipped')") is False
    # the players of a marked row carry its mark (the heavy-trained convtasnet: too quiet), a clean row's none
    players = browser.eval("[...document.querySelectorAll('.player[data-label^=\"convtasnet\"]')].map(p => "
                           "[p.dataset.label, p.querySelector('.bad') ? p.querySelector('.bad').textContent : ''])")
    quiet = [m for label, m in players if "stft-heavy-v1" in label]
    clean = [m for label, m in players if "stft-heavy-v1" not in label]
    assert quiet and all(m.startswith("⚠ ") and "too quiet" in m for m in quiet), players
    assert clean and all(m == "" for m in clean), players
    # the screenshot shows the players where the page has some (the README's picture), else the top
    browser.eval("(() => { const h = [...document.querySelectorAll('h3')].find(h => h.textContent === 'Listen'); "
                 "window.scrollTo(0, h ? h.getBoundingClientRect().top + window.scrollY - 8 : 0); })()")
    shot = browser.screenshot(tmp_path / "site-screenshot.png")
    assert shot.stat().st_size > 10_000
    target = os.environ.get("BENCH_SITE_SCREENSHOT")
    if target:   # for the README: a 256-colour palette PNG, a third of the size of the capture
        from PIL import Image

        Image.open(browser.screenshot(tmp_path / "readme.png")).convert("RGB").quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(target, optimize=True)
