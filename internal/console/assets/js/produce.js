// Produce one record to a topic.
import { h, clear, panel, busyButton, fmtTime, errBox } from './ui.js';
import { post, enc } from './api.js';

export function renderProduce(ctx, body, t) {
  const part = h('input', { type: 'number', min: 0, max: t.partitions - 1, placeholder: 'any', test: 'produce-partition', style: 'width:100px' });
  const encoding = h('select', { test: 'produce-encoding' }, h('option', { value: 'utf8' }, 'UTF-8 text / JSON'), h('option', { value: 'hex' }, 'hex bytes'));
  const key = h('input', { class: 'mono', placeholder: 'no key', test: 'produce-key', style: 'width:100%' });
  const value = h('textarea', { test: 'produce-value', placeholder: '{"id": 1}', rows: 8 });
  const headers = h('div', { class: 'stack' });
  const addHeader = () => headers.appendChild(h('div', { class: 'row c' },
    h('input', { class: 'mono grow', placeholder: 'header name', test: 'produce-header-key' }),
    h('input', { class: 'mono grow', placeholder: 'value', test: 'produce-header-value' }),
    h('button', { class: 'small', onclick: e => e.target.closest('.row').remove() }, '×')));
  const result = h('div', { test: 'produce-result' });
  const btn = h('button', { class: 'primary', test: 'produce-submit', onclick: () => send() }, 'Produce');
  const fmt = h('button', { class: 'small', test: 'produce-format', onclick: () => {
    try { value.value = JSON.stringify(JSON.parse(value.value), null, 2); } catch (e) { clear(result, errBox('Not JSON: ' + e.message)); }
  } }, 'Format JSON');
  clear(body, panel('Produce a record', h('div', { class: 'stack', style: 'max-width:820px' },
    h('div', { class: 'row' }, h('label', { class: 'f' }, 'Partition', part), h('label', { class: 'f' }, 'Encoding', encoding),
      h('label', { class: 'f grow' }, 'Key', key)),
    h('label', { class: 'f' }, 'Value', value),
    h('div', { class: 'row c' }, fmt, h('button', { class: 'small', test: 'produce-header-add', onclick: addHeader }, '+ Header')),
    headers,
    h('div', { class: 'row c' }, btn, result)), { test: 'panel-produce' }));

  async function send() {
    const req = { value: value.value, encoding: encoding.value };
    if (part.value !== '') req.partition = +part.value;
    if (key.value !== '') req.key = key.value;
    const hs = [...headers.children].map(r => r.querySelectorAll('input')).filter(([k]) => k.value).map(([k, v]) => ({ key: k.value, value: v.value }));
    if (hs.length) req.headers = hs;
    try {
      const r = await busyButton(btn, () => post(`topics/${enc(t.name)}/records`, req));
      clear(result, h('span', { test: 'produce-ok', dataset: { partition: r.partition, offset: r.offset, timestamp: r.timestamp } },
        '✓ partition ', h('b', null, r.partition), ', offset ', h('b', null, r.offset), ', ', fmtTime(r.timestamp), ' · ',
        h('a', { href: `#/topics/${enc(t.name)}/messages?partition=${r.partition}&offset=${r.offset}`, test: 'produce-view' }, 'view')));
    } catch (e) { clear(result, errBox(e, 'produce-error')); }
  }
}
