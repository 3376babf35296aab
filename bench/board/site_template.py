"""The listening page's fixed parts (bench/board/site.py fills them): the generated-file mark, the inline CSS
and JavaScript (sortable tables, one player at a time, a note where a file cannot load) and the HTML shell.
Nothing comes from the network, so the page works from ``file://``."""

from __future__ import annotations

MARK = "<!-- GENERATED FILE: rendered by `bench leaderboard` from results/ only; `bench leaderboard --check` " \
       "(run in CI) fails when it is out of date. -->"
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;
color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
small{color:#555}.delta{color:#064}.bad{color:#a00}a.run{font-size:.8em}
.grid{display:flex;flex-wrap:wrap;gap:.8em}.player{margin:0;width:322px}
.player img{display:block;border:1px solid #999}.player audio{width:320px;height:32px}
.player figcaption{font-size:.85em;font-weight:600}.state{font-size:.75em;color:#555}
.heatmap{max-width:100%}nav a{margin-right:1em}
"""
JS = """
function sortTable(table, col, th) {
  const dir = th.getAttribute('aria-sort') === 'descending' ? 'ascending' : 'descending';
  const tbody = table.tBodies[0], rows = Array.from(tbody.rows);
  rows.forEach((r, i) => { if (r.dataset.i === undefined) r.dataset.i = i; });
  const key = r => { const v = r.cells[col].dataset.v; return v === '' ? null : (isNaN(v) ? v : parseFloat(v)); };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null || y === null) return (x === null) - (y === null) || a.dataset.i - b.dataset.i;
    const c = x < y ? -1 : x > y ? 1 : 0;
    return (dir === 'ascending' ? c : -c) || a.dataset.i - b.dataset.i;
  });
  rows.forEach(r => tbody.appendChild(r));
  table.querySelectorAll('th').forEach(h => h.removeAttribute('aria-sort'));
  th.setAttribute('aria-sort', dir);
}
document.querySelectorAll('table.sortable').forEach(t => t.querySelectorAll('th').forEach((th, i) => {
  th.tabIndex = 0; th.title = 'sort';
  th.addEventListener('click', () => sortTable(t, i, th));
  th.addEventListener('keydown', e => { if (e.key === 'Enter') sortTable(t, i, th); });
}));
document.querySelectorAll('audio').forEach(a => {
  const s = a.parentElement.querySelector('.state');
  const ok = () => { a.dataset.state = 'ok'; s.textContent = a.duration.toFixed(2) + ' s'; };
  const bad = () => { a.dataset.state = 'error'; s.textContent = '⚠ cannot load ' + a.getAttribute('src');
                      s.className = 'state bad'; };
  a.addEventListener('loadedmetadata', ok);
  a.addEventListener('error', bad);
  a.addEventListener('play', () => document.querySelectorAll('audio').forEach(o => { if (o !== a) o.pause(); }));
  if (a.readyState >= 1) ok(); else if (a.error) bad();
});
"""



def document(body: list[str]) -> str:
    """The whole page around `body` (HTML fragments, one per line)."""
    return ("<!doctype html>\n" + MARK + "\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            f"<title>vctk-denoise-bench</title><style>{CSS}</style></head><body>\n" + "\n".join(body) +
            f"\n<script>{JS}</script></body></html>\n")
