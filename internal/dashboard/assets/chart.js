// Charts drawn as SVG by the dashboard's own code: time on x, values on
// y, series coloured by the stylesheet's c0…c7 classes. Each chart is an
// image with a label; every bar and point carries a <title> tooltip.
const NS = 'http://www.w3.org/2000/svg';
// Widths are in the units of the viewBox, chosen near the pixels of the
// cards they are drawn in so that text keeps its size.
const W = 440, TW = 1300, PAD = { l: 40, r: 10, t: 10, b: 26 };

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

// niceMax rounds up to 1, 2 or 5 × 10^n.
function niceMax(v) {
  if (!(v > 0)) return 4;
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function timeLabel(t, span) {
  const d = new Date(t);
  const two = (n) => String(n).padStart(2, '0');
  if (span > 2 * 864e5) return `${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}h`;
  if (span < 5 * 6e4) return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

// frame draws axes and grid for [from,to] × [0,ymax] and returns the
// svg and the scale functions.
function frame(label, from, to, ymax, height, W) {
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': label });
  const iw = W - PAD.l - PAD.r, ih = height - PAD.t - PAD.b;
  const x = (t) => PAD.l + ((t - from) / Math.max(1, to - from)) * iw;
  const y = (v) => PAD.t + ih - (v / ymax) * ih;
  const grid = s('g', { class: 'grid' });
  const ticks = String(ymax).startsWith('5') ? 5 : 4;
  for (let i = 0; i <= ticks; i++) {
    const v = (ymax * i) / ticks;
    grid.append(s('line', { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }));
    grid.append(s('text', { x: PAD.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, Number.isInteger(v) ? v.toLocaleString() : v.toFixed(1)));
  }
  for (let i = 0; i <= 5; i++) {
    const t = from + ((to - from) * i) / 5;
    grid.append(s('text', { x: x(t), y: height - 8, 'text-anchor': i === 0 ? 'start' : i === 5 ? 'end' : 'middle' }, timeLabel(t, to - from)));
  }
  svg.append(grid, s('line', { class: 'axis', x1: PAD.l, x2: PAD.l, y1: PAD.t, y2: PAD.t + ih }));
  return { svg, x, y, iw, ih };
}

function legend(names) {
  const el = document.createElement('div');
  el.className = 'legend';
  names.forEach((n, i) => {
    const item = document.createElement('span');
    const sw = document.createElement('i');
    sw.className = 'c' + (i % 8);
    item.append(sw, n);
    el.append(item);
  });
  return el;
}

function wrap(svg, names, empty) {
  const div = document.createElement('div');
  div.append(svg);
  if (names.length) div.append(legend(names));
  if (empty) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = empty;
    div.append(p);
  }
  return div;
}

// lineChart: series [{name, points: [[ms, value], …]}].
export function lineChart({ label, series, from, to, height = 220, width = W }) {
  const all = series.flatMap((x) => x.points.map((p) => p[1]));
  const f = frame(label, from, to, niceMax(Math.max(0, ...all)), height, width);
  series.forEach((ser, i) => {
    const pts = ser.points.filter((p) => p[1] !== null && p[1] !== undefined && p[0] >= from && p[0] <= to);
    if (!pts.length) return;
    const d = pts.map((p, j) => (j ? 'L' : 'M') + f.x(p[0]).toFixed(1) + ' ' + f.y(p[1]).toFixed(1)).join(' ');
    f.svg.append(s('path', { class: 'line c' + (i % 8), d }));
    const last = pts[pts.length - 1];
    const dot = s('circle', { class: 'c' + (i % 8), cx: f.x(last[0]), cy: f.y(last[1]), r: 3 });
    dot.append(s('title', {}, `${ser.name}: ${last[1]} at ${new Date(last[0]).toLocaleTimeString()}`));
    f.svg.append(dot);
  });
  return wrap(f.svg, series.length > 1 ? series.map((x) => x.name) : [], all.length ? '' : 'no data in this range');
}

// barChart: buckets (start ms) of width step; series [{name, values}]
// stacked per bucket.
export function barChart({ label, buckets, step, series, from, to, height = 220, width = W }) {
  const totals = buckets.map((_, i) => series.reduce((a, x) => a + (x.values[i] || 0), 0));
  const f = frame(label, from, to, niceMax(Math.max(0, ...totals)), height, width);
  const bw = Math.max(1, (step / Math.max(1, to - from)) * f.iw - 1);
  buckets.forEach((t, i) => {
    let base = 0;
    series.forEach((ser, k) => {
      const v = ser.values[i] || 0;
      if (!v) return;
      const y0 = f.y(base), y1 = f.y(base + v);
      const r = s('rect', { class: 'c' + (k % 8), x: f.x(t).toFixed(1), y: y1.toFixed(1), width: bw.toFixed(1), height: Math.max(0.5, y0 - y1).toFixed(1) });
      r.append(s('title', {}, `${ser.name}: ${v} (${new Date(t).toLocaleString()})`));
      f.svg.append(r);
      base += v;
    });
  });
  const any = totals.some((v) => v > 0);
  return wrap(f.svg, series.map((x) => x.name), any ? '' : 'none in this range');
}

// timeline: sessions [{start, end, label, renewed}] as bars, marks
// [{t, kind: drop|renewal|refusal, label}] as vertical lines with text.
export function timeline({ label, from, to, sessions, marks, height = 130 }) {
  const svg = s('svg', { class: 'chart timeline', viewBox: `0 0 ${TW} ${height}`, role: 'img', 'aria-label': label });
  const iw = TW - PAD.l - PAD.r - 150; // room on the right for the last label
  const x = (t) => PAD.l + ((Math.min(Math.max(t, from), to) - from) / Math.max(1, to - from)) * iw;
  const grid = s('g', { class: 'grid' });
  for (let i = 0; i <= 8; i++) {
    const t = from + ((to - from) * i) / 8;
    grid.append(s('line', { x1: x(t), x2: x(t), y1: 10, y2: height - 24 }));
    grid.append(s('text', { x: x(t), y: height - 8, 'text-anchor': i === 0 ? 'start' : 'middle' }, timeLabel(t, to - from)));
  }
  svg.append(grid);
  for (const ss of sessions) {
    const r = s('rect', { class: 'session' + (ss.renewed ? ' renewed' : ''), x: x(ss.start), y: 30, height: 22, width: Math.max(2, x(ss.end) - x(ss.start)), rx: 3 });
    r.append(s('title', {}, ss.label));
    svg.append(r);
  }
  // Labels alternate between two rows so neighbours stay readable.
  marks.forEach((m, i) => {
    const g = s('g', { class: 'mark ' + m.kind, 'data-code': m.code || '' });
    const mx = x(m.t);
    g.append(s('line', { x1: mx, x2: mx, y1: 22, y2: 60 + (i % 3) * 12 }));
    g.append(s('text', { x: mx + 3, y: 72 + (i % 3) * 12 }, m.short || m.label));
    g.append(s('title', {}, m.label));
    svg.append(g);
  });
  const div = wrap(svg, [], sessions.length || marks.length ? '' : 'no connection activity in this range');
  return div;
}
