// Overview: nodes, health, live throughput, disk per node. Polls every 2 s.
import { h, clear, card, panel, table, badge, fmtInt, fmtBytes, fmtRate, fmtNum, errBox } from './ui.js';
import { get } from './api.js';
import { lineChart } from './chart.js';

export async function render(ctx) {
  ctx.crumbs('Overview');
  const cards = h('div', { class: 'cards', test: 'overview-cards' });
  const bytesChart = h('div', { test: 'throughput-bytes' });
  const msgChart = h('div', { test: 'throughput-messages' });
  const nodes = h('div');
  const err = h('div');
  clear(ctx.view, h('h1', null, 'Cluster overview'), err, cards,
    h('div', { class: 'grid2' },
      panel('Throughput, bytes (this node)', bytesChart, { test: 'panel-throughput' }),
      panel('Messages in (this node)', msgChart)),
    panel('Nodes', nodes, { flush: true, test: 'panel-nodes' }));

  const tick = async () => {
    let c, tp;
    try {
      [c, tp] = await Promise.all([get('cluster', { quiet: true }), get('cluster/throughput', { quiet: true })]);
      clear(err);
    } catch (e) {
      clear(err, errBox(e));
      return;
    }
    const hl = c.health || {};
    const diskTotal = (c.nodes || []).reduce((a, n) => a + (n.log_dir_bytes > 0 ? n.log_dir_bytes : 0), 0);
    const last = (tp.samples || []).slice(-1)[0] || {};
    clear(cards,
      card('Nodes', fmtInt((c.nodes || []).length), '', 'card-nodes'),
      card('Controller', c.controller_id ?? '–', '', 'card-controller'),
      card('Topics', fmtInt(hl.topics), '', 'card-topics'),
      card('Partitions', fmtInt(hl.partitions), '', 'card-partitions'),
      card('Under-replicated', fmtInt(hl.under_replicated), hl.under_replicated ? 'bad' : 'ok', 'card-under-replicated'),
      card('Under min ISR', fmtInt(hl.under_min_isr), hl.under_min_isr ? 'bad' : 'ok', 'card-under-min-isr'),
      card('Offline', fmtInt(hl.offline), hl.offline ? 'bad' : 'ok', 'card-offline'),
      card('Disk used', fmtBytes(diskTotal), '', 'card-disk'),
      card('Bytes in', fmtRate(last.bytes_in || 0), '', 'card-bytes-in'),
      card('Bytes out', fmtRate(last.bytes_out || 0), '', 'card-bytes-out'));
    const samples = tp.samples || [];
    clear(bytesChart, lineChart([
      { name: 'in', color: 'var(--in)', points: samples.map(p => [p.time, p.bytes_in]) },
      { name: 'out', color: 'var(--out)', points: samples.map(p => [p.time, p.bytes_out]) },
    ], { format: v => fmtBytes(v) + '/s', height: 190, window: 5 * 60e3, test: 'chart-bytes', width: bytesChart.clientWidth }));
    clear(msgChart, lineChart([
      { name: 'messages/s', color: '#8b5cf6', points: samples.map(p => [p.time, p.messages_in]) },
    ], { format: fmtNum, height: 190, window: 5 * 60e3, test: 'chart-messages', width: msgChart.clientWidth }));
    const maxDisk = Math.max(1, ...(c.nodes || []).map(n => n.log_dir_bytes || 0));
    clear(nodes, table([
      { title: 'Node', render: n => h('b', null, n.id) },
      { title: 'Status', render: n => n.fenced ? badge('fenced', 'red') : badge('active', 'green') },
      { title: 'Role', render: n => n.controller ? badge('controller', 'blue') : (n.id === c.controller_id ? badge('controller', 'blue') : '') },
      { title: 'Address', render: n => h('code', null, `${n.host}:${n.port}`) },
      { title: 'Rack', render: n => n.rack || '–' },
      { title: 'Disk (log dirs)', render: n => h('div', { class: 'row c' },
        h('div', { style: 'width:120px;height:6px;background:#edf0f5;border-radius:3px;overflow:hidden' },
          h('div', { style: `height:100%;background:var(--accent);width:${n.log_dir_bytes > 0 ? Math.max(2, 100 * n.log_dir_bytes / maxDisk) : 0}%` })),
        fmtBytes(n.log_dir_bytes)) },
      { title: 'This node', render: n => n.id === c.node_id ? badge('you are here') : '' },
    ], c.nodes || [], { test: 'nodes-table', rowAttrs: n => ({ 'data-node': n.id }) }));
  };
  ctx.every(2000, tick);
}
