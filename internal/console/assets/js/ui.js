// DOM helpers: h() builds elements, plus tables, pagers, modals, toasts and formatting.

// h(tag, attrs, ...children): attrs keys "class", "test" (data-test), "on<event>", "style"
// (object or string), "dataset" (object), a boolean false/null value omits the attribute.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v === null || v === undefined) continue;
      if (k === 'class') el.className = v;
      else if (k === 'test') el.setAttribute('data-test', v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = !!v;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const svgNS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// table(columns, rows, opts): columns [{title, num, render(row) -> node|string, cls}].
export function table(columns, rows, opts = {}) {
  const head = h('tr', null, columns.map(c => h('th', { class: c.num ? 'num' : null }, c.title)));
  const body = h('tbody');
  if (!rows.length) {
    body.appendChild(h('tr', null, h('td', { class: 'empty', colspan: columns.length }, opts.empty || 'Nothing here')));
  }
  for (const r of rows) {
    const tr = h('tr', opts.rowAttrs ? opts.rowAttrs(r) : null,
      columns.map(c => h('td', { class: [c.num ? 'num' : '', c.cls || ''].join(' ').trim() || null }, c.render(r))));
    body.appendChild(tr);
  }
  return h('table', { class: 't', test: opts.test }, h('thead', null, head), body);
}

// pager renders "a–b of n" with previous/next buttons; onPage(newOffset).
export function pager(total, offset, limit, onPage, test = 'pager') {
  const end = Math.min(total, offset + limit);
  const pages = Math.max(1, Math.ceil(total / limit));
  const page = Math.floor(offset / limit) + 1;
  const go = h('input', { type: 'number', min: 1, max: pages, value: page, style: 'width:70px', test: test + '-page',
    onchange: e => { const p = Math.min(pages, Math.max(1, +e.target.value || 1)); onPage((p - 1) * limit); } });
  return h('div', { class: 'pager', test },
    total ? `${fmtInt(offset + 1)}–${fmtInt(end)} of ${fmtInt(total)}` : 'none',
    h('div', { class: 'right' },
      h('button', { class: 'small', test: test + '-prev', disabled: offset <= 0, onclick: () => onPage(Math.max(0, offset - limit)) }, '‹ Prev'),
      'page', go, `of ${fmtInt(pages)}`,
      h('button', { class: 'small', test: test + '-next', disabled: end >= total, onclick: () => onPage(offset + limit) }, 'Next ›')));
}

export function card(k, v, cls, test) {
  return h('div', { class: 'card', test }, h('div', { class: 'k' }, k), h('div', { class: 'v ' + (cls || ''), test: test && test + '-value' }, v));
}

export function panel(title, body, opts = {}) {
  return h('div', { class: 'panel', test: opts.test },
    h('div', { class: 'hd' }, typeof title === 'string' ? h('h2', null, title) : title, opts.right ? h('div', { class: 'right' }, opts.right) : null),
    h('div', { class: 'bd' + (opts.flush ? ' flush' : '') }, body));
}

export function badge(text, color) { return h('span', { class: 'badge ' + (color || '') }, text); }

export function toast(msg, kind) {
  const t = h('div', { class: 'toast ' + (kind || ''), test: 'toast' }, msg);
  document.getElementById('toasts').appendChild(t);
  setTimeout(() => t.remove(), kind === 'err' ? 8000 : 4000);
}

// modal(title, body, buttons) shows a dialog; buttons [{label, cls, test, onclick(close)}]. Returns close().
export function modal(title, body, buttons, test = 'modal') {
  const close = () => bg.remove();
  const bg = h('div', { class: 'modal-bg', onmousedown: e => { if (e.target === bg) close(); } },
    h('div', { class: 'modal', test },
      h('div', { class: 'hd' }, title),
      h('div', { class: 'bd' }, body),
      h('div', { class: 'ft' }, buttons.map(b => h('button', { class: b.cls, test: b.test, onclick: () => b.onclick(close) }, b.label)))));
  document.body.appendChild(bg);
  const first = bg.querySelector('input,select,textarea');
  if (first) first.focus();
  return close;
}

// busyButton runs fn with the button disabled and a spinner in it.
export async function busyButton(btn, fn) {
  const old = [...btn.childNodes];
  btn.disabled = true;
  btn.replaceChildren(h('span', { class: 'spin' }), ...old.map(n => n.cloneNode(true)));
  try { return await fn(); } finally { btn.disabled = false; btn.replaceChildren(...old); }
}

export function fmtInt(n) {
  if (n === null || n === undefined || n < 0 && n === -1) return '–';
  return Number(n).toLocaleString('en-US');
}
export function fmtBytes(n) {
  if (n === null || n === undefined || n < 0) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) : n) + ' ' + u[i];
}
export function fmtRate(n) { return fmtBytes(n) + '/s'; }
export function fmtNum(n) {
  if (n === null || n === undefined) return '–';
  if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(1) + 'G';
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return Math.round(n * 10) / 10 + '';
}
export function fmtSecs(s) {
  if (s === null || s === undefined || s < 0) return '–';
  if (s === 0) return '0 s';
  if (s < 1) return s.toFixed(2) + ' s';
  if (s < 90) return s.toFixed(1) + ' s';
  if (s < 5400) return (s / 60).toFixed(1) + ' min';
  if (s < 172800) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' d';
}
export function fmtTime(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  const d = new Date(ms);
  const p = (x, n = 2) => String(x).padStart(n, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
// localInput turns ms into a datetime-local value (seconds precision) and back.
export function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}
export function fromLocalInput(v) { return v ? new Date(v).getTime() : NaN; }

export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

export function errBox(err, test = 'error') {
  return h('div', { class: 'err-box', test }, err && err.message ? err.message : String(err));
}
