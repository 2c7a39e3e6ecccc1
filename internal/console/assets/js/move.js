// Partition moves: reassign the replicas of partitions, follow and cancel reassignments in
// progress, and run a preferred (or unclean) leader election.
import { h, clear, table, panel, pager, badge, modal, toast, busyButton, fmtInt, debounce, errBox } from './ui.js';
import { get, post, del, enc } from './api.js';

const PLIMIT = 100;

export async function render(ctx) {
  ctx.crumbs('Partition moves');
  const active = h('div');
  const nodesNote = h('span', { class: 'note', test: 'move-nodes' });
  const topicIn = h('input', { list: 'move-topics', placeholder: 'topic name', test: 'move-topic', style: 'width:280px',
    oninput: debounce(() => suggest(), 200), onchange: () => { offset = 0; load(); } });
  const topicsList = h('datalist', { id: 'move-topics' });
  const loadBtn = h('button', { test: 'move-load', onclick: () => { offset = 0; load(); } }, 'Load partitions');
  const planBox = h('div');
  const electResult = h('div');
  const submit = h('button', { class: 'primary', test: 'move-submit', disabled: true, onclick: () => reassign() }, 'Reassign changed partitions');
  const electSel = h('button', { test: 'elect-preferred', disabled: true, onclick: () => elect(selected()) }, 'Elect preferred leader (selected)');
  const electAll = h('button', { test: 'elect-all', onclick: () => elect(null) }, 'Elect preferred leaders (whole cluster)');
  clear(ctx.view,
    h('h1', null, 'Partition moves'),
    panel('Reassignments in progress', active, { flush: true, test: 'panel-reassignments',
      right: h('button', { class: 'small danger', test: 'reassign-cancel-all', onclick: () => cancel(null) }, 'Cancel all') }),
    panel(h('div', { class: 'row c' }, h('h2', null, 'Move replicas'), nodesNote),
      h('div', { class: 'stack' },
        h('div', { class: 'row c' }, topicIn, topicsList, loadBtn, h('span', { class: 'grow' }), electSel, submit),
        h('p', { class: 'note' }, 'Edit the replica list of a partition (node ids, the first is the preferred leader), then reassign. ',
          'Tick partitions to elect their preferred leader.'),
        planBox), { test: 'panel-move' }),
    panel('Leader election', h('div', { class: 'stack' }, h('div', { class: 'row c' }, electAll,
      h('span', { class: 'note' }, 'moves leadership back to the first replica wherever it has drifted')), electResult), { test: 'panel-elect' }));

  let offset = 0, rows = [];
  get('cluster', { quiet: true }).then(c => {
    nodesNote.textContent = 'nodes: ' + (c.nodes || []).map(n => n.id + (n.fenced ? ' (fenced)' : '')).join(', ');
  }).catch(() => {});

  async function suggest() {
    try {
      const r = await get(`topics?search=${enc(topicIn.value)}&limit=20`, { quiet: true });
      clear(topicsList, (r.topics || []).map(t => h('option', { value: t.name })));
    } catch { /* only suggestions */ }
  }
  suggest();

  async function load() {
    const name = topicIn.value.trim();
    if (!name) return;
    let r;
    try {
      r = await busyButton(loadBtn, () => get(`topics/${enc(name)}/partitions?limit=${PLIMIT}&offset=${offset}`));
    } catch (e) { clear(planBox, errBox(e)); return; }
    rows = (r.partitions || []).map(p => ({ p, input: null, check: null }));
    clear(planBox, table([
      { title: '', render: x => (x.check = h('input', { type: 'checkbox', test: 'move-select', dataset: { partition: x.p.partition }, onchange: changed })) },
      { title: 'Partition', num: true, render: x => h('b', null, x.p.partition) },
      { title: 'Leader', num: true, render: x => x.p.leader < 0 ? badge('none', 'red') :
        h('span', null, x.p.leader, ' ', x.p.replicas && x.p.replicas[0] !== x.p.leader ? badge('not preferred', 'amber') : null) },
      { title: 'Replicas', render: x => h('code', null, (x.p.replicas || []).join(', ')) },
      { title: 'ISR', render: x => h('code', null, (x.p.isr || []).join(', ')) },
      { title: 'New replicas', render: x => (x.input = h('input', { class: 'mono', test: 'move-replicas', dataset: { partition: x.p.partition },
        value: (x.p.replicas || []).join(','), style: 'width:160px', oninput: changed })) },
    ], rows, { test: 'move-table', rowAttrs: x => ({ 'data-partition': x.p.partition }) }),
    pager(r.total, offset, PLIMIT, o => { offset = o; load(); }, 'move-pager'));
    changed();
  }

  function parse(v) { return v.split(/[\s,]+/).filter(Boolean).map(Number); }
  function edits() {
    return rows.filter(x => x.input && parse(x.input.value).join(',') !== (x.p.replicas || []).join(','))
      .map(x => ({ topic: topicIn.value.trim(), partition: x.p.partition, replicas: parse(x.input.value) }));
  }
  function selected() { return rows.filter(x => x.check && x.check.checked).map(x => ({ topic: topicIn.value.trim(), partition: x.p.partition })); }
  function changed() {
    const n = edits().length;
    submit.disabled = !n;
    submit.textContent = n ? `Reassign ${n} partition${n > 1 ? 's' : ''}` : 'Reassign changed partitions';
    electSel.disabled = !selected().length;
  }

  function reassign() {
    const parts = edits();
    if (parts.some(p => !p.replicas.length || p.replicas.some(isNaN))) { toast('Replica lists must be node ids, e.g. 1,2,3', 'err'); return; }
    modal('Reassign partitions', h('div', null, h('p', null, `Move the replicas of ${parts.length} partition(s):`),
      table([{ title: 'Partition', render: p => `${p.topic}-${p.partition}` }, { title: 'New replicas', render: p => p.replicas.join(', ') }], parts)), [
      { label: 'Cancel', test: 'move-confirm-cancel', onclick: close => close() },
      { label: 'Reassign', cls: 'primary', test: 'move-confirm', onclick: async close => {
        close();
        try {
          await busyButton(submit, () => post('reassignments', { partitions: parts }));
          toast(`Reassignment of ${parts.length} partition(s) started`, 'ok');
          refresh();
          load();
        } catch (e) { toast(e.message, 'err'); }
      } },
    ], 'move-dialog');
  }

  async function elect(parts) {
    const btn = parts ? electSel : electAll;
    try {
      const body = { type: 'preferred' };
      if (parts) body.partitions = parts;
      const r = await busyButton(btn, () => post('leaders/elect', body));
      const res = r.results || [];
      clear(electResult, h('p', { class: 'note', test: 'elect-summary' }, `${fmtInt(res.filter(x => !x.error).length)} elected, ${fmtInt(res.filter(x => x.error).length)} not`),
        table([
          { title: 'Partition', render: x => `${x.topic}-${x.partition}` },
          { title: 'Result', render: x => x.error ? badge(x.error, x.error === 'ELECTION_NOT_NEEDED' ? '' : 'red') : badge('elected', 'green') },
        ], res.slice(0, 500), { test: 'elect-results', empty: 'Nothing to elect: every leader is its preferred replica' }));
      if (parts) load();
    } catch (e) { clear(electResult, errBox(e, 'elect-error')); }
  }

  async function cancel(parts) {
    try {
      const body = { partitions: parts || last.map(r => ({ topic: r.topic, partition: r.partition })) };
      if (!body.partitions.length) return;
      await del('reassignments', body);
      toast('Reassignment cancelled', 'ok');
      refresh();
    } catch (e) { toast(e.message, 'err'); }
  }

  let last = [];
  async function refresh() {
    try { last = (await get('reassignments', { quiet: true })).reassignments || []; } catch (e) { clear(active, errBox(e)); return; }
    clear(active, table([
      { title: 'Partition', render: r => h('b', null, `${r.topic}-${r.partition}`) },
      { title: 'Replicas', render: r => h('code', null, (r.replicas || []).join(', ')) },
      { title: 'Adding', render: r => (r.adding || []).length ? badge((r.adding || []).join(', '), 'blue') : '–' },
      { title: 'Removing', render: r => (r.removing || []).length ? badge((r.removing || []).join(', '), 'amber') : '–' },
      { title: '', num: true, render: r => h('button', { class: 'small danger', test: 'reassign-cancel', dataset: { topic: r.topic, partition: r.partition },
        onclick: () => cancel([{ topic: r.topic, partition: r.partition }]) }, 'Cancel') },
    ], last, { test: 'reassignments-table', empty: 'No reassignment in progress' }));
  }
  ctx.every(2000, refresh);
}
