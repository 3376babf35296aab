"""The listening page's fixed parts: the generated-file mark, the inline CSS and JavaScript (page.css, page.js)
and the HTML shell. Nothing comes from the network, so the page works from ``file://``."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

MARK = "<!-- GENERATED FILE: rendered by `bench leaderboard` from results/ only; `bench leaderboard --check` " \
       "(run in CI) fails when it is out of date. -->"
#: the page's stylesheet and script, kept as files beside this module and inlined into the page
CSS = (_HERE / "page.css").read_text(encoding="utf-8")
JS = (_HERE / "page.js").read_text(encoding="utf-8")


def scrolling(html: str) -> str:
    """Every table in its own horizontally scrolling box, so a narrow screen never pans the page."""
    return html.replace("<table ", "<div class=scroll><table ").replace("</table>", "</table></div>")


def document(body: list[str]) -> str:
    """The whole page around `body` (HTML fragments, one per line)."""
    return ("<!doctype html>\n" + MARK + "\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            f"<title>vctk-denoise-bench</title><style>{CSS}</style></head><body>\n" + scrolling("\n".join(body)) +
            f"\n<script>{JS}</script></body></html>\n")
