// The admin API client: JSON requests under /api/v1/ and the NDJSON record stream.

const base = new URL('api/v1/', document.baseURI).pathname;
let inflight = 0;

function busy(d) {
  inflight += d;
  const bar = document.getElementById('busy');
  if (bar) bar.classList.toggle('on', inflight > 0);
}

export class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'HTTP_' + status;
  }
}

// api(method, path, body, {quiet, text}) returns the parsed JSON (null for 204), or with text
// the body unparsed (a poll compares it with the last one to redraw only what changed). quiet
// requests (the 2 s polls) do not move the progress bar.
export async function api(method, path, body, opts = {}) {
  if (!opts.quiet) busy(1);
  try {
    const init = { method, headers: {} , signal: opts.signal };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(base + path.replace(/^\//, ''), init);
    if (r.status === 204) return null;
    const text = await r.text();
    if (r.ok && opts.text) return text;
    let j = null;
    try { j = text ? JSON.parse(text) : null; } catch { j = { error: { message: text.trim() || r.statusText } }; }
    if (!r.ok) throw new APIError(r.status, j);
    return j;
  } finally {
    if (!opts.quiet) busy(-1);
  }
}

export const get = (p, o) => api('GET', p, undefined, o);
export const post = (p, b) => api('POST', p, b);
export const del = (p, b) => api('DELETE', p, b);
export const patch = (p, b) => api('PATCH', p, b);
export const put = (p, b) => api('PUT', p, b);
export const enc = encodeURIComponent;

// stream reads an NDJSON response line by line and calls onLine(object) for each; it resolves
// when the stream ends and rejects on an HTTP error. Abort it with signal.
export async function stream(path, onLine, signal) {
  const r = await fetch(base + path.replace(/^\//, ''), { signal });
  if (!r.ok) {
    let j = null;
    try { j = await r.json(); } catch { /* not JSON */ }
    throw new APIError(r.status, j);
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) onLine(JSON.parse(line));
    }
  }
  buf += dec.decode();
  if (buf.trim()) onLine(JSON.parse(buf));
}
