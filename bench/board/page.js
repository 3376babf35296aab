
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
