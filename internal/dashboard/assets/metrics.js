// Reading the hub's metrics (GET /api/v1/metrics, Azure Monitor's shape)
// and log summaries into chart series.
import { get, call, enc } from './api.js';

export const RANGES = [
  { value: 'PT1H', label: 'Last hour', ms: 36e5, interval: 'PT1M', step: 6e4, bin: '1m' },
  { value: 'PT6H', label: 'Last 6 hours', ms: 6 * 36e5, interval: 'PT5M', step: 3e5, bin: '5m' },
  { value: 'P1D', label: 'Last day', ms: 864e5, interval: 'PT15M', step: 9e5, bin: '15m' },
  { value: 'P7D', label: 'Last 7 days', ms: 7 * 864e5, interval: 'PT1H', step: 36e5, bin: '1h' },
];

// metric returns [{name, points: [[ms, v]]}], one per timeseries (split
// by the filter's '*' dimension, named by its value).
export async function metric(name, agg, range, filter, signal) {
  let q = `/api/v1/metrics?metricnames=${name}&aggregation=${agg}&timespan=${range.value}&interval=${range.interval}`;
  if (filter) q += '&$filter=' + enc(filter);
  const body = await get(q, { signal });
  const key = agg.toLowerCase();
  const out = [];
  for (const v of body.value || []) {
    for (const ts of v.timeseries || []) {
      const md = ts.metadatavalues || [];
      const dims = md.map((m) => m.value).join(' · ') || v.name?.localizedValue || name;
      out.push({ name: dims, dims: Object.fromEntries(md.map((m) => [m.name?.value, m.value])),
        points: (ts.data || []).map((p) => [Date.parse(p.timeStamp), p[key] ?? null]) });
    }
  }
  return out;
}

// merge sums series into one per value of dimension dim (the points of
// series with one timestamp grid, as one metrics answer has), optionally
// only those that keep() accepts.
export function merge(series, dim, keep = () => true) {
  const by = new Map();
  for (const s of series.filter(keep)) {
    const name = s.dims?.[dim] || 'Unknown';
    const cur = by.get(name);
    if (!cur) { by.set(name, { name, points: s.points.map((p) => [p[0], p[1]]) }); continue; }
    s.points.forEach((p, i) => { if (p[1] !== null) cur.points[i][1] = (cur.points[i][1] ?? 0) + p[1]; });
  }
  return [...by.values()];
}

// buckets turns series into stacked-bar input on the range's grid.
export function buckets(series, range, now) {
  const from = Math.floor((now - range.ms) / range.step) * range.step;
  const n = Math.ceil((now - from) / range.step);
  const starts = Array.from({ length: n }, (_, i) => from + i * range.step);
  const out = series.map((s) => {
    const values = new Array(n).fill(0);
    for (const [t, v] of s.points) {
      const i = Math.floor((t - from) / range.step);
      if (i >= 0 && i < n && v) values[i] += v;
    }
    return { name: s.name, values };
  });
  return { buckets: starts, series: out, from, to: from + n * range.step };
}

// kql runs a log query and returns its first table.
export async function kql(query, signal) {
  const body = await call('POST', '/api/v1/query', { query }, { signal });
  return body.tables?.[0] || { columns: [], rows: [] };
}

// latest returns the newest sampled value of each gauge (the collector
// samples connectedDeviceCount several times a second, the registry counts
// every second): an answer in O(1), where counting 100,000 devices with a
// device query takes a scan.
export async function latest(names, signal) {
  const body = await get(`/api/v1/metrics?metricnames=${names.join(',')}&aggregation=Maximum&timespan=PT2M&interval=PT1S`, { signal });
  const out = {};
  for (const v of body.value || []) {
    const pts = (v.timeseries?.[0]?.data || []).filter((p) => p.maximum !== undefined && p.maximum !== null);
    out[v.name?.value] = pts.length ? pts[pts.length - 1].maximum : null;
  }
  return out;
}
