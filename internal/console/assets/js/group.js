// One consumer group: members and assignments, per-partition lag, lag over time (the broker's
// history ring plus what this page saw in its 2 s polls), reset offsets (dry run, then apply).
import { h, clear, table, pager, card, panel, badge, modal, toast, busyButton, fmtInt, fmtSecs, fmtNum, toLocalInput, fromLocalInput, errBox } from './ui.js';
import { get, post, del, enc } from './api.js';
import { lineChart } from './chart.js';
import { stateBadge } from './groups.js';

const OLIMIT = 100;

export async function render(ctx, [id]) {
  ctx.crumbs(['Consumer groups', '#/groups'], id);
  const cards = h('div', { class: 'cards' });
  const chartLag = h('div'), chartSecs = h('div');
  const members = h('div'), offsets = h('div'), err = h('div');
  const resetBox = h('div');
  const chartNote = h('span', { class: 'note', test: 'lag-chart-note' });
  clear(ctx.view,
    h('h1', null, h('span', { test: 'group-title' }, id), h('span', { test: 'group-state' }),
      h('span', { style: 'margin-left:auto' }, h('button', { class: 'danger', test: 'group-delete', onclick: () => deleteGroup(id) }, 'Delete group'))),
    err, cards,
    h('div', { class: 'grid2' },
      panel('Lag over time (records)', chartLag, { test: 'panel-lag-chart', right: chartNote }),
      panel('Lag over time (seconds)', chartSecs)),
    panel('Members and assignments', members, { flush: true, test: 'panel-members' }),
    panel('Offsets and lag', offsets, { flush: true, test: 'panel-offsets' }),
    panel('Reset offsets', resetBox, { test: 'panel-reset' }));

  const live = []; // [time, total_lag, max_lag_seconds] seen by this page
  let g = null;
  let resetUI = null;
  // The offsets table is one page of OLIMIT rows, asked of the server (offset, limit): a group
  // on a 10 000-partition topic costs 100 rows a refresh, on the wire and on screen.
  let offPage = 0;
  let seq = 0; // the newest load: an older answer arriving late is dropped
  // What was drawn last: a part is drawn again only when its data changed.
  const drawn = { group: '', chart: '' };
  const drawOffsets = owner => {
    clear(offsets, table([
      { title: 'Topic', render: o => h('a', { href: '#/topics/' + enc(o.topic) }, o.topic) },
      { title: 'Partition', num: true, render: o => o.partition },
      { title: 'Committed', num: true, render: o => h('span', { test: 'offset-committed', dataset: { value: o.committed_offset } }, fmtInt(o.committed_offset)) },
      { title: 'High watermark', num: true, render: o => h('span', { test: 'offset-hw', dataset: { value: o.high_watermark } }, fmtInt(o.high_watermark)) },
      { title: 'Lag', num: true, render: o => h('span', { test: 'offset-lag', dataset: { value: o.lag } }, fmtInt(o.lag)) },
      { title: 'Lag (time)', num: true, render: o => fmtSecs(o.lag_seconds) },
      { title: 'Consumer', render: o => o.member_id ? owner[o.member_id] || o.member_id : h('span', { class: 'note' }, 'unassigned') },
    ], g.offsets || [],
    { test: 'offsets-table', empty: 'No committed offsets', rowAttrs: o => ({ 'data-topic': o.topic, 'data-partition': o.partition }) }),
    g.offsets_total > OLIMIT ? pager(g.offsets_total, offPage, OLIMIT, o => { offPage = o; load(false); }, 'offsets-pager') : null);
  };
  const drawGroup = () => {
    const state = ctx.view.querySelector('[data-test=group-state]');
    clear(state, stateBadge(g.state));
    clear(cards,
      card('State', g.state || '–', '', 'group-card-state'),
      card('Members', fmtInt((g.members || []).length), '', 'group-members'),
      card('Coordinator', g.coordinator ?? '–', '', 'group-coordinator'),
      card('Total lag', fmtInt(g.total_lag), g.total_lag > 0 ? 'warn' : 'ok', 'group-total-lag'),
      card('Max lag (time)', fmtSecs(g.max_lag_seconds), '', 'group-max-lag-seconds'),
      card('Partitions', fmtInt(g.offsets_total), '', 'group-partitions'));
    const owner = {};
    for (const m of g.members || []) owner[m.member_id] = m.client_id || m.member_id;
    clear(members, table([
      { title: 'Member', render: m => h('code', null, m.member_id) },
      { title: 'Instance', render: m => m.instance_id || '–' },
      { title: 'Client', render: m => m.client_id },
      { title: 'Host', render: m => m.host },
      { title: 'Assignment', render: m => (m.assignments || []).map(a => h('div', null, h('b', null, a.topic), ': ', a.partitions.join(', '))) },
    ], g.members || [], { test: 'members-table', empty: 'No active members', rowAttrs: m => ({ 'data-member': m.member_id }) }));
    drawOffsets(owner);
    if (!resetUI) resetUI = resetPanel(resetBox, id, () => g);
    resetUI.update(g);
  };
  const drawCharts = lag => {
    // History ring samples first, then what this page saw after the newest of them.
    const hist = (lag.samples || []).map(p => [p.time, p.total_lag, p.max_lag_seconds]);
    const lastHist = hist.length ? hist[hist.length - 1][0] : 0;
    const pts = hist.concat(live.filter(p => p[0] > lastHist));
    const note = lag.coordinator !== undefined && !hist.length && lag.coordinator !== null
      ? `history kept by node ${lag.coordinator}` : `${hist.length} stored samples every ${fmtInterval(lag.interval_ms || 0)} + live`;
    // Redrawn when a point or the width changed (a point that repeats the last value moves the
    // time axis, so it counts).
    const key = `${note}|${pts.length}|${pts.length ? pts[pts.length - 1].join() : ''}|${pts.length ? pts[0][0] : ''}|${chartLag.clientWidth}`;
    if (key === drawn.chart) return;
    drawn.chart = key;
    chartNote.textContent = note;
    clear(chartLag, lineChart([{ name: 'total lag', color: '#e2713a', points: pts.map(p => [p[0], p[1]]) }],
      { height: 180, test: 'lag-chart', format: fmtNum, width: chartLag.clientWidth }));
    clear(chartSecs, lineChart([{ name: 'max lag seconds', color: '#8b5cf6', points: pts.map(p => [p[0], p[2]]) }],
      { height: 180, test: 'lag-seconds-chart', format: v => fmtSecs(v), seconds: true, width: chartSecs.clientWidth }));
  };
  // load reads the group (the page of offsets on screen) and its lag history and draws what
  // changed; sample adds the answer to the live points (the 2 s refresh, not a page change).
  const load = async sample => {
    const mine = ++seq;
    let lag, text;
    try {
      [text, lag] = await Promise.all([
        get(`groups/${enc(id)}?offset=${offPage}&limit=${OLIMIT}`, { quiet: true, text: true }),
        get(`groups/${enc(id)}/lag`, { quiet: true })]);
      clear(err);
    } catch (e) { clear(err, errBox(e)); return; }
    if (mine !== seq) return;
    g = JSON.parse(text);
    if (sample) {
      const now = Date.now();
      live.push([now, g.total_lag || 0, g.max_lag_seconds || 0]);
      while (live.length && live[0][0] < now - 3600e3) live.shift();
    }
    if (g.offsets_total > 0 && offPage >= g.offsets_total) { offPage = 0; load(false); return; }
    if (text !== drawn.group) {
      drawn.group = text;
      drawGroup();
    }
    drawCharts(lag);
  };
  ctx.every(2000, () => load(true));
}

// fmtInterval is a sampling interval: 200 ms, 10 s, 1.5 s.
function fmtInterval(ms) { return ms < 1000 ? `${ms} ms` : `${ms / 1000} s`; }

function resetPanel(box, id, group) {
  const to = h('select', { test: 'reset-to', onchange: () => { show(); invalidate(); } },
    [['earliest', 'Earliest'], ['latest', 'Latest'], ['timestamp', 'Timestamp'], ['offset', 'Offset']].map(([v, l]) => h('option', { value: v }, l)));
  const ts = h('input', { type: 'datetime-local', step: 1, test: 'reset-timestamp', value: toLocalInput(Date.now() - 3600e3), oninput: () => invalidate() });
  const off = h('input', { type: 'number', min: 0, value: 0, test: 'reset-offset', style: 'width:120px', oninput: () => invalidate() });
  const topic = h('select', { test: 'reset-topic', onchange: () => invalidate() }, h('option', { value: '' }, 'All topics of the group'));
  const tsF = h('label', { class: 'f' }, 'Timestamp (local)', ts), offF = h('label', { class: 'f' }, 'Offset', off);
  const dry = h('button', { test: 'reset-dry-run', onclick: () => run(true) }, 'Dry run');
  const apply = h('button', { class: 'primary', test: 'reset-apply', disabled: true, onclick: () => confirmApply() }, 'Apply');
  const status = h('div', { test: 'reset-status' });
  const result = h('div');
  const warn = h('div', { class: 'note', test: 'reset-warning' });
  function show() {
    tsF.style.display = to.value === 'timestamp' ? '' : 'none';
    offF.style.display = to.value === 'offset' ? '' : 'none';
  }
  function invalidate() { apply.disabled = true; clear(status); }
  show();
  clear(box, h('div', { class: 'stack' },
    h('div', { class: 'row' }, h('label', { class: 'f' }, 'Reset to', to), tsF, offF, h('label', { class: 'f' }, 'Topic', topic), dry, apply),
    warn, status, result));
  function body() {
    const b = { to: to.value, dry_run: true };
    if (to.value === 'timestamp') b.timestamp = fromLocalInput(ts.value);
    if (to.value === 'offset') b.offset = +off.value;
    if (topic.value) b.topics = [topic.value];
    return b;
  }
  async function run(dryRun) {
    const b = body();
    b.dry_run = dryRun;
    const btn = dryRun ? dry : apply;
    try {
      const r = await busyButton(btn, () => post(`groups/${enc(id)}/offsets/reset`, b));
      const changed = (r.offsets || []).filter(o => o.current !== o.new).length;
      clear(status, h('div', { class: 'row c', test: 'reset-state', dataset: { state: dryRun ? 'dry-run' : 'applied' } },
        dryRun ? badge('dry run', 'amber') : badge('applied', 'green'),
        `${fmtInt((r.offsets || []).length)} partitions, ${fmtInt(changed)} ${dryRun ? 'would move' : 'moved'}`));
      clear(result, table([
        { title: 'Topic', render: o => o.topic },
        { title: 'Partition', num: true, render: o => o.partition },
        { title: 'Current', num: true, render: o => fmtInt(o.current) },
        { title: 'New', num: true, render: o => h('b', { test: 'reset-new' }, fmtInt(o.new)) },
        { title: 'Change', num: true, render: o => o.current >= 0 ? (o.new - o.current > 0 ? '+' : '') + fmtInt(o.new - o.current) : '–' },
      ], r.offsets || [], { test: 'reset-result', rowAttrs: o => ({ 'data-topic': o.topic, 'data-partition': o.partition }) }));
      apply.disabled = !dryRun;
      if (!dryRun) toast('Offsets reset', 'ok');
    } catch (e) {
      clear(status, errBox(e.code === 'GROUP_NOT_EMPTY' || e.status === 409
        ? `${e.message} (stop the group's consumers first: Kafka resets only an empty group)` : e, 'reset-error'));
      apply.disabled = true;
    }
  }
  function confirmApply() {
    modal('Reset offsets', h('p', null, 'Commit the offsets of the dry run for group ', h('b', null, id), '?'), [
      { label: 'Cancel', test: 'reset-confirm-cancel', onclick: close => close() },
      { label: 'Reset offsets', cls: 'primary', test: 'reset-confirm', onclick: close => { close(); run(false); } },
    ], 'reset-dialog');
  }
  return {
    update(g) {
      const topics = g.topics || [];
      const have = [...topic.options].slice(1).map(o => o.value);
      if (topics.join('\n') !== have.join('\n')) {
        const v = topic.value;
        clear(topic, h('option', { value: '' }, 'All topics of the group'), topics.map(t => h('option', { value: t }, t)));
        topic.value = v;
      }
      warn.textContent = (g.members || []).length
        ? `The group has ${(g.members || []).length} active member(s): a reset is refused until they leave.` : 'The group is empty: its offsets can be reset.';
    },
  };
}

function deleteGroup(id) {
  const err = h('div');
  modal('Delete group', h('div', { class: 'stack' }, h('p', null, 'Delete group ', h('b', null, id), ' and its committed offsets?'), err), [
    { label: 'Cancel', test: 'group-delete-cancel', onclick: close => close() },
    { label: 'Delete', cls: 'danger solid', test: 'group-delete-submit', onclick: async close => {
      try {
        await busyButton(document.querySelector('[data-test=group-delete-submit]'), () => del('groups/' + enc(id)));
        close();
        toast(`Group ${id} deleted`, 'ok');
        location.hash = '#/groups';
      } catch (e) { clear(err, errBox(e)); }
    } },
  ], 'group-delete-dialog');
}
