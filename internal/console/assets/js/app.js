// The router: hash routes to pages. A page gets a context whose timers and streams stop when
// the route changes, so an open console costs only the polls of the page on screen.
import { h, clear, errBox } from './ui.js';
import { get } from './api.js';
import * as overview from './overview.js';
import * as topics from './topics.js';
import * as topic from './topic.js';
import * as groups from './groups.js';
import * as group from './group.js';
import * as move from './move.js';

const routes = [
  [/^\/?$/, 'overview', overview.render],
  [/^\/topics\/?$/, 'topics', topics.render],
  [/^\/topics\/([^/]+)(?:\/([a-z]+))?$/, 'topics', topic.render],
  [/^\/groups\/?$/, 'groups', groups.render],
  [/^\/groups\/([^/]+)$/, 'groups', group.render],
  [/^\/partitions\/move$/, 'move', move.render],
];

let current = null;

class Context {
  constructor(view) {
    this.view = view;
    this.timers = [];
    this.aborts = [];
    this.alive = true;
  }
  // every(ms, fn) runs fn now and then every ms (never faster than 2 s is the rule for polls),
  // skipping ticks while the tab is hidden or the previous run has not finished.
  every(ms, fn) {
    let running = false;
    const tick = async () => {
      if (!this.alive || running || document.hidden) return;
      running = true;
      try { await fn(); } catch (e) { console.warn(e); } finally { running = false; }
    };
    tick();
    this.timers.push(setInterval(tick, ms));
  }
  abortable() {
    const c = new AbortController();
    this.aborts.push(c);
    return c;
  }
  crumbs(...parts) {
    const el = document.getElementById('crumbs');
    clear(el);
    parts.forEach((p, i) => {
      if (i) el.appendChild(h('span', { class: 'sep' }, '/'));
      el.appendChild(Array.isArray(p) ? h('a', { href: p[1] }, p[0]) : h('span', null, p));
    });
    document.title = parts.map(p => (Array.isArray(p) ? p[0] : p)).reverse().join(' · ') + ' · Moldau';
  }
  dispose() {
    this.alive = false;
    this.timers.forEach(clearInterval);
    this.aborts.forEach(a => a.abort());
  }
}

function route() {
  const path = decodeURIComponent(location.hash.replace(/^#/, '')).split('?')[0] || '/';
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  if (current) current.dispose();
  const view = document.getElementById('view');
  clear(view);
  current = new Context(view);
  for (const [re, nav, render] of routes) {
    const m = path.match(re);
    if (!m) continue;
    document.querySelectorAll('nav.side a').forEach(a => a.classList.toggle('active', a.dataset.nav === nav));
    view.dataset.page = nav;
    Promise.resolve(render(current, m.slice(1).map(x => x && decodeURIComponent(x)), params))
      .catch(e => view.appendChild(errBox(e)));
    return;
  }
  current.crumbs('Not found');
  view.appendChild(h('p', null, 'No such page. ', h('a', { href: '#/' }, 'Back to the overview')));
}

async function header() {
  try {
    const c = await get('cluster', { quiet: true });
    const meta = document.getElementById('meta');
    clear(meta,
      h('span', { test: 'header-cluster' }, 'cluster ', h('code', null, c.cluster_id)),
      h('span', null, 'node ', h('b', null, c.node_id)),
      h('span', null, 'controller ', h('b', null, c.controller_id)));
    document.getElementById('foot').textContent = 'Moldau ' + (c.version || '');
  } catch { /* the overview shows the error */ }
}

window.addEventListener('hashchange', route);
route();
header();
