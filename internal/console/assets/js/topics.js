// Topics: search (server side), paging, create, delete with confirmation.
import { h, clear, table, pager, badge, modal, toast, busyButton, fmtInt, debounce, errBox } from './ui.js';
import { get, post, del, enc } from './api.js';

const LIMIT = 100;

export async function render(ctx, _args, params) {
  ctx.crumbs('Topics');
  let search = params.get('search') || '', internal = false, offset = 0;
  const list = h('div');
  const searchBox = h('input', { type: 'search', placeholder: 'Search topics…', value: search, test: 'topics-search', style: 'width:280px',
    oninput: debounce(e => { search = e.target.value; offset = 0; load(); }, 250) });
  const internalBox = h('input', { type: 'checkbox', test: 'topics-internal', onchange: e => { internal = e.target.checked; offset = 0; load(); } });
  clear(ctx.view,
    h('h1', null, 'Topics', h('span', { class: 'sub', test: 'topics-total' })),
    h('div', { class: 'panel' },
      h('div', { class: 'hd' }, searchBox, h('label', { class: 'chk' }, internalBox, 'show internal'),
        h('div', { class: 'right' },
          h('button', { test: 'topics-refresh', onclick: () => load() }, 'Refresh'),
          h('button', { class: 'primary', test: 'topic-create', onclick: () => createDialog(load) }, '+ Create topic'))),
      h('div', { class: 'bd flush' }, list)));

  async function load() {
    let r;
    try {
      r = await get(`topics?search=${enc(search)}&internal=${internal}&limit=${LIMIT}&offset=${offset}`);
    } catch (e) {
      clear(list, errBox(e));
      return;
    }
    ctx.view.querySelector('[data-test=topics-total]').textContent = `${fmtInt(r.total)} ${r.total === 1 ? 'topic' : 'topics'}`;
    clear(list,
      table([
        { title: 'Name', render: t => h('a', { href: '#/topics/' + enc(t.name), test: 'topic-link', dataset: { name: t.name } }, t.name) },
        { title: 'Partitions', num: true, render: t => fmtInt(t.partitions) },
        { title: 'Replicas', num: true, render: t => fmtInt(t.replication_factor) },
        { title: 'Health', render: t => t.offline ? badge(`${t.offline} offline`, 'red') :
          t.under_replicated ? badge(`${t.under_replicated} under-replicated`, 'amber') : badge('healthy', 'green') },
        { title: '', render: t => t.internal ? badge('internal') : '' },
        { title: '', num: true, render: t => t.internal ? '' :
          h('button', { class: 'small danger', test: 'topic-delete', dataset: { name: t.name }, onclick: () => deleteDialog(t.name, load) }, 'Delete') },
      ], r.topics || [], { test: 'topics-table', empty: search ? `No topic matches “${search}”` : 'No topics yet', rowAttrs: t => ({ 'data-topic': t.name }) }),
      pager(r.total, offset, LIMIT, o => { offset = o; load(); }, 'topics-pager'));
  }
  await load();
}

export function createDialog(done) {
  const name = h('input', { test: 'create-name', placeholder: 'orders', style: 'width:100%' });
  const parts = h('input', { type: 'number', min: 1, value: 3, test: 'create-partitions', style: 'width:110px' });
  const rf = h('input', { type: 'number', min: -1, value: -1, test: 'create-rf', title: '-1: the broker default', style: 'width:110px' });
  const cfgRows = h('div', { class: 'stack' });
  const addCfg = (k = '', v = '') => cfgRows.appendChild(h('div', { class: 'row c' },
    h('input', { class: 'mono grow', placeholder: 'retention.ms', value: k, test: 'create-config-key', list: 'topic-config-names' }),
    h('input', { class: 'mono grow', placeholder: 'value', value: v, test: 'create-config-value' }),
    h('button', { class: 'small', onclick: e => e.target.closest('.row').remove() }, '×')));
  const err = h('div');
  const body = h('div', { class: 'stack' },
    h('label', { class: 'f' }, 'Name', name),
    h('div', { class: 'row' },
      h('label', { class: 'f' }, 'Partitions', parts),
      h('label', { class: 'f' }, 'Replication factor', rf),
      h('span', { class: 'note' }, '-1 = broker default')),
    h('div', { class: 'row c' }, h('h2', null, 'Configs'), h('button', { class: 'small', test: 'create-config-add', onclick: () => addCfg() }, '+ Add config')),
    cfgRows,
    h('datalist', { id: 'topic-config-names' }, ['cleanup.policy', 'retention.ms', 'retention.bytes', 'segment.bytes', 'min.insync.replicas',
      'max.message.bytes', 'message.timestamp.type', 'compression.type', 'segment.ms', 'delete.retention.ms'].map(v => h('option', { value: v }))),
    err);
  modal('Create topic', body, [
    { label: 'Cancel', test: 'create-cancel', onclick: close => close() },
    { label: 'Create', cls: 'primary', test: 'create-submit', onclick: async close => {
      const configs = {};
      for (const row of cfgRows.children) {
        const [k, v] = row.querySelectorAll('input');
        if (k.value.trim()) configs[k.value.trim()] = v.value;
      }
      const btn = document.querySelector('[data-test=create-submit]');
      try {
        await busyButton(btn, () => post('topics', { name: name.value.trim(), partitions: +parts.value, replication_factor: +rf.value, configs }));
        close();
        toast(`Topic ${name.value.trim()} created`, 'ok');
        if (done) done(name.value.trim());
      } catch (e) {
        clear(err, errBox(e, 'create-error'));
      }
    } },
  ], 'create-dialog');
}

export function deleteDialog(topic, done) {
  const confirm = h('input', { test: 'delete-confirm-name', class: 'mono', style: 'width:100%', placeholder: topic });
  const err = h('div');
  modal('Delete topic', h('div', { class: 'stack' },
    h('p', null, 'This deletes ', h('b', null, topic), ' and all its records. It cannot be undone.'),
    h('label', { class: 'f' }, 'Type the topic name to confirm', confirm), err), [
    { label: 'Cancel', test: 'delete-cancel', onclick: close => close() },
    { label: 'Delete', cls: 'danger solid', test: 'delete-submit', onclick: async close => {
      if (confirm.value !== topic) { clear(err, errBox('The name does not match.')); return; }
      try {
        await busyButton(document.querySelector('[data-test=delete-submit]'), () => del('topics/' + enc(topic)));
        close();
        toast(`Topic ${topic} deleted`, 'ok');
        if (done) done();
      } catch (e) { clear(err, errBox(e)); }
    } },
  ], 'delete-dialog');
}
