// Consumer groups with their lag. Polls every 5 s.
import { h, clear, table, badge, fmtInt, fmtSecs, errBox } from './ui.js';
import { get, enc } from './api.js';

export function stateBadge(s) {
  const c = { Stable: 'green', Empty: '', Dead: 'red', PreparingRebalance: 'amber', CompletingRebalance: 'amber' }[s];
  return badge(s || 'unknown', c === undefined ? 'blue' : c);
}

export async function render(ctx) {
  ctx.crumbs('Consumer groups');
  let search = '', last = [];
  const box = h('div');
  const total = h('span', { class: 'sub', test: 'groups-total' });
  clear(ctx.view, h('h1', null, 'Consumer groups', total),
    h('div', { class: 'panel' },
      h('div', { class: 'hd' }, h('input', { type: 'search', placeholder: 'Filter groups…', test: 'groups-search', style: 'width:280px',
        oninput: e => { search = e.target.value; draw(); } })),
      h('div', { class: 'bd flush' }, box)));
  function draw() {
    const rows = last.filter(g => !search || g.group_id.includes(search));
    total.textContent = `${fmtInt(last.length)} ${last.length === 1 ? 'group' : 'groups'}`;
    clear(box, table([
      { title: 'Group', render: g => h('a', { href: '#/groups/' + enc(g.group_id), test: 'group-link', dataset: { group: g.group_id } }, g.group_id) },
      { title: 'State', render: g => stateBadge(g.state) },
      { title: 'Members', num: true, render: g => fmtInt(g.members) },
      { title: 'Protocol', render: g => [g.protocol_type, g.protocol].filter(Boolean).join(' / ') || '–' },
      { title: 'Coordinator', num: true, render: g => g.coordinator ?? '–' },
      { title: 'Total lag', num: true, render: g => h('span', { test: 'group-lag', dataset: { group: g.group_id } }, fmtInt(g.total_lag)) },
      { title: 'Max lag (time)', num: true, render: g => fmtSecs(g.max_lag_seconds) },
    ], rows, { test: 'groups-table', empty: 'No consumer groups', rowAttrs: g => ({ 'data-group': g.group_id }) }));
  }
  ctx.every(5000, async () => {
    try { last = (await get('groups', { quiet: true })).groups || []; } catch (e) { clear(box, errBox(e)); return; }
    draw();
  });
}
