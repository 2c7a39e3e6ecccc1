// The message browser: seek by offset or timestamp, one partition or all, a text filter the
// broker applies while it streams NDJSON; progress, Stop, JSON pretty-printing and a hex view.
import { h, clear, panel, badge, fmtInt, fmtTime, toLocalInput, fromLocalInput, errBox } from './ui.js';
import { stream, enc } from './api.js';

export function renderMessages(ctx, body, t, params) {
  const partSel = t.partitions <= 256
    ? h('select', { test: 'msg-partition' }, h('option', { value: '' }, 'All partitions'),
      Array.from({ length: t.partitions }, (_, i) => h('option', { value: i }, 'Partition ' + i)))
    : h('input', { test: 'msg-partition', placeholder: 'all', style: 'width:90px', type: 'number', min: 0, max: t.partitions - 1 });
  if (params.get('partition') !== null) partSel.value = params.get('partition');
  const from = h('select', { test: 'msg-from', onchange: () => showSeek() },
    ['earliest', 'latest', 'offset', 'timestamp'].map(v => h('option', { value: v }, { earliest: 'Oldest', latest: 'Newest', offset: 'Offset', timestamp: 'Timestamp' }[v])));
  const offset = h('input', { type: 'number', min: 0, value: 0, test: 'msg-offset', style: 'width:120px' });
  const ts = h('input', { type: 'datetime-local', step: 1, test: 'msg-timestamp', value: toLocalInput(Date.now() - 3600e3) });
  const limit = h('select', { test: 'msg-limit' }, [20, 50, 100, 500, 1000].map(v => h('option', { value: v, selected: v === 50 }, v)));
  const filter = h('input', { type: 'search', placeholder: 'text in key, value or headers', test: 'msg-filter', style: 'width:240px',
    onkeydown: e => { if (e.key === 'Enter') run(); } });
  const filterIn = h('select', { test: 'msg-filter-in' }, ['any', 'key', 'value', 'header'].map(v => h('option', { value: v }, v)));
  const decode = h('select', { test: 'msg-decode' }, ['auto', 'utf8', 'json', 'hex'].map(v => h('option', { value: v }, v)));
  const searchBtn = h('button', { class: 'primary', test: 'msg-search', onclick: () => run() }, 'Search');
  const stopBtn = h('button', { test: 'msg-stop', disabled: true, onclick: () => stop() }, 'Stop');
  const progress = h('div', { class: 'progress', test: 'msg-progress' });
  const rowsBody = h('tbody', { test: 'msg-rows' });
  const nextBox = h('div');
  const offsetF = h('label', { class: 'f' }, 'Offset', offset);
  const tsF = h('label', { class: 'f' }, 'From time (local)', ts);
  if (params.get('offset') !== null) { from.value = 'offset'; offset.value = params.get('offset'); }
  function showSeek() {
    offsetF.style.display = from.value === 'offset' ? '' : 'none';
    tsF.style.display = from.value === 'timestamp' ? '' : 'none';
  }
  showSeek();

  const controls = h('div', { class: 'row' },
    h('label', { class: 'f' }, 'Partition', partSel),
    h('label', { class: 'f' }, 'Start at', from), offsetF, tsF,
    h('label', { class: 'f' }, 'Max results', limit),
    h('label', { class: 'f' }, 'Filter', filter),
    h('label', { class: 'f' }, 'In', filterIn),
    h('label', { class: 'f' }, 'Show as', decode),
    searchBtn, stopBtn);
  const resultTable = h('table', { class: 't', test: 'msg-results' },
    h('thead', null, h('tr', null, ['Partition', 'Offset', 'Timestamp', 'Key', 'Value', 'Headers', 'Size'].map((x, i) =>
      h('th', { class: [0, 1, 5, 6].includes(i) ? 'num' : null }, x)))), rowsBody);
  clear(body,
    panel('Browse messages', h('div', { class: 'stack' }, controls, progress), { test: 'panel-browse' }),
    h('div', { class: 'panel' }, h('div', { class: 'bd flush' }, resultTable), nextBox));
  rowsBody.appendChild(h('tr', null, h('td', { class: 'empty', colspan: 7 }, 'Choose where to start and press Search.')));

  let ctl = null;
  function stop() { if (ctl) ctl.abort(); }

  async function run(startOffset) {
    stop();
    const q = new URLSearchParams();
    const p = String(partSel.value).trim();
    if (p !== '') q.set('partition', p);
    if (startOffset !== undefined) q.set('offset', startOffset);
    else if (from.value === 'offset') q.set('offset', offset.value || 0);
    else if (from.value === 'timestamp') {
      const ms = fromLocalInput(ts.value);
      if (isNaN(ms)) { clear(progress, errBox('Enter a date and time.')); return; }
      q.set('timestamp', ms);
    } else q.set('from', from.value);
    q.set('limit', limit.value);
    if (filter.value) { q.set('filter', filter.value); q.set('filter_in', filterIn.value); }
    q.set('decode', decode.value);
    clear(rowsBody);
    clear(nextBox);
    const c = ctx.abortable();
    ctl = c;
    searchBtn.disabled = true;
    stopBtn.disabled = false;
    const started = performance.now();
    let scanned = 0, matched = 0, done = null, count = 0;
    const bar = h('div', { class: 'bar' }, h('i'));
    const label = h('span', { test: 'msg-progress-text' }, 'Searching…');
    clear(progress, bar, label);
    const show = () => { label.textContent = `Scanned ${fmtInt(scanned)} · matched ${fmtInt(matched)}`; };
    try {
      await stream(`topics/${enc(t.name)}/records?${q}`, o => {
        if (o.type === 'record') { count++; rowsBody.appendChild(recordRow(o, decode.value)); matched = Math.max(matched, count); show(); }
        else if (o.type === 'progress') { scanned = o.scanned; matched = o.matched; show(); }
        else if (o.type === 'done') { done = o; scanned = o.scanned; matched = o.matched; }
        else if (o.type === 'error') throw new Error(o.message || (o.error && o.error.message) || 'error');
      }, c.signal);
      const ms = Math.round(performance.now() - started);
      if (done && done.reason === 'error') throw new Error(`The scan stopped after ${fmtInt(scanned)} records: ${done.error || 'error'}`);
      clear(progress, h('span', { test: 'msg-progress-text', dataset: { state: 'done' } },
        `Done: scanned ${fmtInt(scanned)}, matched ${fmtInt(matched)} in ${ms} ms`));
      if (!count) rowsBody.appendChild(h('tr', null, h('td', { class: 'empty', colspan: 7, test: 'msg-none' }, 'No records matched.')));
      const next = done && done.next ? Object.entries(done.next) : [];
      if (p !== '' && next.length === 1 && count >= +limit.value) {
        nextBox.appendChild(h('div', { class: 'pager' }, h('div', { class: 'right' },
          h('button', { class: 'small', test: 'msg-next', onclick: () => run(next[0][1]) }, `Next from offset ${fmtInt(next[0][1])} ›`))));
      }
    } catch (e) {
      if (e.name === 'AbortError') {
        clear(progress, h('span', { test: 'msg-progress-text', dataset: { state: 'stopped' } },
          `Stopped: scanned ${fmtInt(scanned)}, matched ${fmtInt(matched)}`));
      } else clear(progress, errBox(e, 'msg-error'));
    } finally {
      if (ctl === c) { searchBtn.disabled = false; stopBtn.disabled = true; ctl = null; }
    }
  }
  // A link that names where to start (a produced record's "view", a partition's "messages")
  // shows the records at once rather than an empty table asking for Search.
  if (params.get('partition') !== null || params.get('offset') !== null) run();
}

function preview(v) {
  if (!v) return h('span', { class: 'note' }, 'null');
  const t = v.text.length > 200 ? v.text.slice(0, 200) + '…' : v.text;
  return v.encoding === 'utf8' ? t : h('span', null, badge(v.encoding), ' ', t);
}

function recordRow(r, decode) {
  const tr = h('tr', { class: 'clickable', test: 'msg-row', dataset: { partition: r.partition, offset: r.offset } },
    h('td', { class: 'num' }, r.partition),
    h('td', { class: 'num' }, fmtInt(r.offset)),
    h('td', { title: r.timestamp_type || '' }, h('span', { class: 'mono' }, fmtTime(r.timestamp))),
    h('td', { class: 'val', test: 'msg-key' }, preview(r.key)),
    h('td', { class: 'val', test: 'msg-value' }, preview(r.value)),
    h('td', { class: 'num' }, (r.headers || []).length || ''),
    h('td', { class: 'num' }, r.size ? fmtInt(r.size) + ' B' : ''));
  let open = null;
  tr.addEventListener('click', () => {
    if (open) { open.remove(); open = null; tr.classList.remove('sel'); return; }
    tr.classList.add('sel');
    open = h('tr', { test: 'msg-detail-row' }, h('td', { colspan: 7, style: 'padding:0' }, detail(r, decode)));
    tr.after(open);
  });
  return tr;
}

function detail(r) {
  const box = h('div');
  let mode = r.value && r.value.encoding === 'json' ? 'pretty' : r.value && r.value.encoding === 'hex' ? 'hex' : 'text';
  const modes = [['pretty', 'JSON'], ['text', 'Text'], ['hex', 'Hex']];
  const seg = h('div', { class: 'seg' });
  const draw = () => {
    clear(seg, modes.map(([m, l]) => h('button', { class: m === mode ? 'on' : null, test: 'msg-view-' + m, onclick: e => { e.stopPropagation(); mode = m; draw(); } }, l)));
    clear(box, valueView(r.value, mode));
  };
  draw();
  return h('div', { class: 'detail', test: 'msg-detail', onclick: e => e.stopPropagation() },
    h('div', { class: 'meta' },
      h('span', null, 'partition ', h('b', null, r.partition)),
      h('span', null, 'offset ', h('b', null, r.offset)),
      h('span', null, (r.timestamp_type || 'timestamp') + ' ', h('b', null, fmtTime(r.timestamp)), ` (${r.timestamp})`),
      h('span', null, 'key ', r.key ? h('code', { test: 'msg-detail-key' }, r.key.encoding === 'hex' ? r.key.text : r.key.text) : h('i', null, 'null')),
      r.size ? h('span', null, 'size ', h('b', null, r.size + ' B')) : null),
    (r.headers || []).length ? h('div', { class: 'meta' }, 'headers', (r.headers || []).map(x =>
      h('span', { class: 'badge', test: 'msg-header' }, `${x.key} = ${x.value ? x.value.text : 'null'}`))) : null,
    h('div', { class: 'row c', style: 'margin-bottom:8px' }, h('b', null, 'Value'), seg,
      h('button', { class: 'small', test: 'msg-copy', onclick: e => { e.stopPropagation(); navigator.clipboard && navigator.clipboard.writeText(r.value ? r.value.text : ''); } }, 'Copy')),
    box);
}

function valueView(v, mode) {
  if (!v) return h('pre', { class: 'code', test: 'msg-value-view' }, 'null');
  const bytes = v.encoding === 'hex' ? hexToBytes(v.text) : new TextEncoder().encode(v.text);
  if (mode === 'hex') return h('pre', { class: 'code', test: 'msg-value-view', dataset: { mode } }, hexdump(bytes));
  if (mode === 'pretty') {
    try {
      const text = v.encoding === 'hex' ? new TextDecoder('utf-8', { fatal: true }).decode(bytes) : v.text;
      return h('pre', { class: 'code', test: 'msg-value-view', dataset: { mode } }, highlight(JSON.stringify(JSON.parse(text), null, 2)));
    } catch { return h('div', null, h('p', { class: 'note' }, 'Not JSON; shown as text.'), valueView(v, 'text')); }
  }
  let text = v.text;
  if (v.encoding === 'hex') {
    try { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch { text = '(not UTF-8) ' + v.text; }
  }
  return h('pre', { class: 'code', test: 'msg-value-view', dataset: { mode } }, text);
}

function hexToBytes(s) {
  s = s.replace(/[^0-9a-f]/gi, '');
  const b = new Uint8Array(s.length >> 1);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.substr(i * 2, 2), 16);
  return b;
}

function hexdump(b) {
  const lines = [];
  for (let i = 0; i < b.length; i += 16) {
    const row = [...b.subarray(i, i + 16)];
    const hex = row.map(x => x.toString(16).padStart(2, '0')).join(' ');
    const asc = row.map(x => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('');
    lines.push(i.toString(16).padStart(8, '0') + '  ' + hex.padEnd(48) + ' ' + asc);
  }
  return lines.join('\n') || '(empty)';
}

// highlight colours JSON text (already pretty-printed) with spans.
function highlight(json) {
  const frag = document.createDocumentFragment();
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0, m;
  while ((m = re.exec(json))) {
    frag.appendChild(document.createTextNode(json.slice(last, m.index)));
    const cls = m[1] ? (m[2] ? 'k' : 's') : m[3] ? 'b' : 'n';
    frag.appendChild(h('span', { class: cls }, m[1] || m[0]));
    if (m[2]) frag.appendChild(document.createTextNode(m[2]));
    last = re.lastIndex;
  }
  frag.appendChild(document.createTextNode(json.slice(last)));
  return frag;
}
