"""The listening page's fixed parts (bench/board/site.py fills them): the generated-file mark, the inline CSS
and JavaScript (sortable tables that keep systems, the noisy input and oracles apart; one player at a time; a
note where a file cannot load; per utterance an A/B switch between clean, noisy and two chosen systems at the
same playback position) and the HTML shell; every table scrolls in its own box.
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
.scroll{overflow-x:auto;max-width:100%}h1,h2,h3,h4,p,nav{overflow-wrap:anywhere}
.ab{margin:.3em 0;font-size:.9em}.ab button{margin:0 .2em}.ab select{max-width:14em}
.ab button.on{background:#064;color:#fff}
"""
JS = """
function sortTable(table, col, th) {
  const dir = th.getAttribute('aria-sort') === 'descending' ? 'ascending' : 'descending';
  const tbody = table.tBodies[0], rows = Array.from(tbody.rows);
  rows.forEach((r, i) => { if (r.dataset.i === undefined) r.dataset.i = i; });
  const key = r => { const v = r.cells[col].dataset.v; return v === '' ? null : (isNaN(v) ? v : parseFloat(v)); };
  rows.sort((a, b) => {
    const g = (a.dataset.group || 0) - (b.dataset.group || 0);   // systems, then the noisy input, then oracles
    if (g) return g;
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
  a.addEventListener('play', () => document.querySelectorAll('audio').forEach(o => {
    if (o !== a) { o.pause(); delete o.dataset.active; } else o.dataset.active = '1'; }));
  if (a.readyState >= 1) ok(); else if (a.error) bad();
});
document.querySelectorAll('.ab').forEach(ab => {
  const players = [...ab.nextElementSibling.querySelectorAll('.player[data-label]')];
  const audio = l => { const f = players.find(p => p.dataset.label === l); return f && f.querySelector('audio'); };
  const models = players.map(p => p.dataset.label).slice(2);
  ['.ab-a', '.ab-b'].forEach((sel, k) => {
    const s = ab.querySelector(sel);
    models.forEach(m => s.add(new Option(m, m)));
    s.selectedIndex = Math.min(k, models.length - 1);
  });
  const label = to => to === 'clean' ? players[0].dataset.label : to === 'noisy' ? players[1].dataset.label
                                     : ab.querySelector('.ab-' + to).value;
  ab.querySelectorAll('button').forEach(b => b.addEventListener('click', () => {
    const target = audio(label(b.dataset.to));
    if (!target) return;
    const cur = players.map(p => p.querySelector('audio')).find(a => a && a.dataset.active);
    const t = cur ? cur.currentTime : 0, wasPlaying = cur ? !cur.paused : true;
    players.forEach(p => { const a = p.querySelector('audio'); if (a) { a.pause(); delete a.dataset.active; } });
    target.currentTime = t;
    target.dataset.active = '1';
    if (wasPlaying) target.play().catch(() => {});
    ab.querySelectorAll('button').forEach(o => o.classList.toggle('on', o === b));
    ab.querySelector('.ab-now').textContent = label(b.dataset.to) + ' at ' + t.toFixed(2) + ' s';
  }));
});
"""



def scrolling(html: str) -> str:
    """Every table in its own horizontally scrolling box, so a narrow screen never pans the page."""
    return html.replace("<table ", "<div class=scroll><table ").replace("</table>", "</table></div>")


def document(body: list[str]) -> str:
    """The whole page around `body` (HTML fragments, one per line)."""
    return ("<!doctype html>\n" + MARK + "\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            f"<title>vctk-denoise-bench</title><style>{CSS}</style></head><body>\n" + scrolling("\n".join(body)) +
            f"\n<script>{JS}</script></body></html>\n")
