// lineChart draws time series as SVG (no library): series [{name, color, points:[[timeMs, value]]}].
// opts: width, height, format(value), window (ms shown at least), test, empty, area, and
// seconds (the values are durations: the axis steps by round durations).
import { s, fmtNum } from './ui.js';

export function lineChart(series, opts = {}) {
  // Width: the container's, so text is drawn at its size (no stretching); 640 before layout.
  const W = Math.max(320, Math.round(opts.width || 640)), H = opts.height || 200;
  const L = 64, R = 14, T = 24, B = 22;
  const fmt = opts.format || fmtNum;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, 'data-test': opts.test || 'chart' });
  const all = series.flatMap(x => x.points);
  // What is drawn, for tests and scripts: the number of points and the largest value.
  svg.setAttribute('data-points', all.length);
  svg.setAttribute('data-max', all.length ? Math.max(...all.map(p => p[1])) : '');
  // Legend.
  const leg = s('g', { class: 'legend' });
  let lx = L;
  for (const x of series) {
    const last = x.points.length ? x.points[x.points.length - 1][1] : null;
    leg.appendChild(s('rect', { x: lx, y: 7, width: 10, height: 3, fill: x.color }));
    const label = x.name + (last === null ? '' : '  ' + fmt(last));
    leg.appendChild(s('text', { x: lx + 14, y: 12 }, label));
    lx += 24 + label.length * 6.2;
  }
  svg.appendChild(leg);
  if (all.length < 1) {
    svg.appendChild(s('text', { class: 'nodata', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, opts.empty || 'No data yet'));
    return svg;
  }
  let t0 = Math.min(...all.map(p => p[0])), t1 = Math.max(...all.map(p => p[0]));
  if (opts.window) t0 = Math.min(t0, t1 - opts.window);
  if (t1 === t0) t0 = t1 - 1000;
  let vmax = Math.max(...all.map(p => p[1]), 0);
  vmax = opts.seconds ? niceSeconds(vmax || 1) : niceCeil(vmax || 1);
  const x = t => L + (t - t0) / (t1 - t0) * (W - L - R);
  const y = v => T + (1 - v / vmax) * (H - T - B);
  const grid = s('g', { class: 'grid' }), axis = s('g', { class: 'axis' });
  for (let i = 0; i <= 4; i++) {
    const v = vmax * i / 4, yy = y(v);
    grid.appendChild(s('line', { x1: L, x2: W - R, y1: yy, y2: yy }));
    axis.appendChild(s('text', { x: L - 6, y: yy + 3, 'text-anchor': 'end' }, fmt(v)));
  }
  const span = t1 - t0;
  for (let i = 0; i <= 4; i++) {
    const t = t0 + span * i / 4;
    const d = new Date(t);
    const lab = span > 2 * 3600e3 ? `${d.getHours()}:${String(d.getMinutes()).padStart(2, '0')}` :
      `${d.getHours()}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`;
    axis.appendChild(s('text', { x: x(t), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, lab));
  }
  svg.appendChild(grid);
  svg.appendChild(axis);
  for (const ser of series) {
    if (!ser.points.length) continue;
    const d = ser.points.map((p, i) => (i ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join(' ');
    if (opts.area !== false) {
      const first = ser.points[0], last = ser.points[ser.points.length - 1];
      svg.appendChild(s('path', { d: `${d} L${x(last[0]).toFixed(1)} ${y(0)} L${x(first[0]).toFixed(1)} ${y(0)} Z`, fill: ser.color, 'fill-opacity': 0.08, stroke: 'none' }));
    }
    svg.appendChild(s('path', { d, fill: 'none', stroke: ser.color, 'stroke-width': 1.6, 'vector-effect': 'non-scaling-stroke', 'stroke-linejoin': 'round' }));
    if (ser.points.length === 1) {
      const p = ser.points[0];
      svg.appendChild(s('circle', { cx: x(p[0]), cy: y(p[1]), r: 2.5, fill: ser.color }));
    }
  }
  return svg;
}

function niceCeil(v) {
  const e = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * e) return m * e;
  return 10 * e;
}

// niceSeconds is the top of an axis of durations in seconds: four ticks of a round duration
// (15 s, 1 min, 30 min, 1 h, ...) rather than of a round number of seconds (2500 s).
function niceSeconds(v) {
  const steps = [0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  for (const st of steps) if (v <= 4 * st) return 4 * st;
  return 4 * 86400 * Math.ceil(v / (4 * 86400));
}
