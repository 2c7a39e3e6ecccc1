// One topic: tabs partitions (paged), configs (edit), messages (the browser), produce.
import { h, clear, table, pager, badge, card, panel, toast, busyButton, fmtInt, fmtBytes, errBox } from './ui.js';
import { get, patch, enc } from './api.js';
import { deleteDialog } from './topics.js';
import { renderMessages } from './messages.js';
import { renderProduce } from './produce.js';

const TABS = [['partitions', 'Partitions'], ['configs', 'Configs'], ['messages', 'Messages'], ['produce', 'Produce']];

export async function render(ctx, [name, tab], params) {
  tab = tab || 'partitions';
  ctx.crumbs(['Topics', '#/topics'], name);
  const t = await get('topics/' + enc(name));
  const body = h('div');
  clear(ctx.view,
    h('h1', null, h('span', { test: 'topic-title' }, t.name), t.internal ? badge('internal') : null,
      h('span', { class: 'sub mono' }, t.id || ''),
      h('span', { style: 'margin-left:auto' },
        t.internal ? null : h('button', { class: 'danger', test: 'topic-delete', onclick: () => deleteDialog(t.name, () => { location.hash = '#/topics'; }) }, 'Delete topic'))),
    h('div', { class: 'cards' },
      card('Partitions', fmtInt(t.partitions), '', 'topic-partitions'),
      card('Replication factor', fmtInt(t.replication_factor), '', 'topic-rf'),
      card('Configs set', fmtInt((t.configs || []).filter(c => !c.default).length), '', 'topic-configs-set')),
    h('div', { class: 'tabs' }, TABS.map(([id, label]) =>
      h('a', { href: `#/topics/${enc(name)}/${id}`, class: id === tab ? 'active' : null, test: 'tab-' + id }, label))),
    body);
  if (tab === 'partitions') return partitions(ctx, body, t);
  if (tab === 'configs') return configs(ctx, body, t);
  if (tab === 'messages') return renderMessages(ctx, body, t, params);
  if (tab === 'produce') return renderProduce(ctx, body, t);
}

const PLIMIT = 100;

async function partitions(ctx, body, t) {
  let offset = 0;
  const box = h('div');
  clear(body, panel('Partitions', box, { flush: true, test: 'panel-partitions', right: h('span', { class: 'note' }, `${fmtInt(t.partitions)} partitions, ${PLIMIT} a page`) }));
  const load = async () => {
    let r;
    try { r = await get(`topics/${enc(t.name)}/partitions?limit=${PLIMIT}&offset=${offset}`); } catch (e) { clear(box, errBox(e)); return; }
    const ids = l => (l || []).join(', ');
    clear(box, table([
      { title: 'Partition', num: true, render: p => h('b', null, p.partition) },
      { title: 'Leader', num: true, render: p => p.leader < 0 ? badge('none', 'red') : p.leader },
      { title: 'Epoch', num: true, render: p => p.leader_epoch },
      { title: 'Replicas', render: p => h('code', null, ids(p.replicas)) },
      { title: 'ISR', render: p => h('span', null, h('code', null, ids(p.isr)), ' ',
        (p.isr || []).length < (p.replicas || []).length ? badge('under-replicated', 'amber') : null) },
      { title: 'Offline', render: p => (p.offline_replicas || []).length ? badge(ids(p.offline_replicas), 'red') : '–' },
      { title: 'Start offset', num: true, render: p => fmtInt(p.log_start_offset) },
      { title: 'High watermark', num: true, render: p => fmtInt(p.high_watermark) },
      { title: 'Records', num: true, render: p => p.high_watermark >= 0 && p.log_start_offset >= 0 ? fmtInt(p.high_watermark - p.log_start_offset) : '–' },
      { title: 'Size', num: true, render: p => fmtBytes(p.size_bytes) },
      { title: '', render: p => h('a', { href: `#/topics/${enc(t.name)}/messages?partition=${p.partition}`, test: 'partition-browse' }, 'messages') },
    ], r.partitions || [], { test: 'partitions-table', rowAttrs: p => ({ 'data-partition': p.partition }) }),
    pager(r.total, offset, PLIMIT, o => { offset = o; load(); }, 'partitions-pager'));
  };
  await load();
}

async function configs(ctx, body, t) {
  let onlySet = false, search = '';
  let list = t.configs || [];
  const box = h('div');
  const addKey = h('input', { class: 'mono', placeholder: 'config name', test: 'config-add-key', style: 'width:240px' });
  const addVal = h('input', { class: 'mono', placeholder: 'value', test: 'config-add-value', style: 'width:200px' });
  const addBtn = h('button', { class: 'primary', test: 'config-add-submit', onclick: () => save(addKey.value.trim(), addVal.value, addBtn) }, 'Set');
  clear(body, panel(h('div', { class: 'row c' },
    h('input', { type: 'search', placeholder: 'Filter configs…', test: 'config-search', oninput: e => { search = e.target.value; draw(); } }),
    h('label', { class: 'chk' }, h('input', { type: 'checkbox', test: 'config-only-set', onchange: e => { onlySet = e.target.checked; draw(); } }), 'only overrides')),
  box, { flush: true, test: 'panel-configs', right: [addKey, addVal, addBtn] }));

  async function save(key, value, btn) {
    if (!key) return;
    try {
      const r = await busyButton(btn, () => patch(`topics/${enc(t.name)}/configs`, { set: { [key]: value } }));
      list = r.configs || list;
      toast(`${key} = ${value}`, 'ok');
      draw();
    } catch (e) { toast(e.message, 'err'); }
  }
  async function reset(key, btn) {
    try {
      const r = await busyButton(btn, () => patch(`topics/${enc(t.name)}/configs`, { delete: [key] }));
      list = r.configs || list;
      toast(`${key} reset to the default`, 'ok');
      draw();
    } catch (e) { toast(e.message, 'err'); }
  }
  function draw() {
    const rows = list.filter(c => (!onlySet || !c.default) && (!search || c.name.includes(search)));
    clear(box, table([
      { title: 'Name', render: c => h('code', null, c.name) },
      { title: 'Value', render: c => c.sensitive ? h('i', null, 'hidden') : h('code', { test: 'config-value', dataset: { name: c.name } }, c.value ?? 'null') },
      { title: 'Source', render: c => c.default ? badge('default') : badge((c.source || 'topic').toLowerCase().replace(/_/g, ' '), 'blue') },
      { title: '', num: true, render: c => c.read_only ? badge('read-only') : h('span', { class: 'row c', style: 'justify-content:flex-end;gap:6px' },
        h('button', { class: 'small', test: 'config-edit', dataset: { name: c.name }, onclick: e => edit(e.target.closest('tr'), c) }, 'Edit'),
        c.default ? null : h('button', { class: 'small', test: 'config-reset', dataset: { name: c.name }, onclick: e => reset(c.name, e.target) }, 'Reset')) },
    ], rows, { test: 'configs-table', rowAttrs: c => ({ 'data-config': c.name }) }));
  }
  function edit(tr, c) {
    const input = h('input', { class: 'mono', value: c.value ?? '', test: 'config-input', style: 'width:100%' });
    const td = tr.children[1];
    const saveBtn = h('button', { class: 'small primary', test: 'config-save', onclick: () => save(c.name, input.value, saveBtn) }, 'Save');
    clear(td, h('div', { class: 'row c' }, input, saveBtn, h('button', { class: 'small', onclick: draw }, 'Cancel')));
    input.focus();
    input.addEventListener('keydown', e => { if (e.key === 'Enter') saveBtn.click(); if (e.key === 'Escape') draw(); });
  }
  draw();
}
