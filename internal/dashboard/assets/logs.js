// Logs: a KQL editor over the hub's resource logs. Results as a table,
// as a chart when the query summarizes over bin(TimeGenerated, …);
// mistakes shown at their line:column; CSV and JSON export.
import { call } from './api.js';
import { h, table, card } from './dom.js';
import { barChart } from './chart.js';

export const EXAMPLES = [
  { name: 'Connection errors', query: `AzureDiagnostics
| where ( ResourceType == "IOTHUBS" and Category == "Connections" and Level == "Error")` },
  { name: 'One device\'s connection history', query: `AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend DeviceId = tostring(parse_json(properties_s).deviceId)
| where DeviceId == "test-device"
| order by TimeGenerated asc` },
  { name: 'Connection events with SDK and protocol', query: `AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend parsed_json = parse_json(properties_s)
| extend SDKVersion = tostring(parsed_json.sdkVersion) , DeviceId = tostring(parsed_json.deviceId) , Protocol = tostring(parsed_json.protocol)
| distinct TimeGenerated, OperationName, Level, ResultType, ResultDescription, DeviceId, Protocol, SDKVersion` },
  { name: 'Connects and disconnects per 5 minutes', query: `AzureDiagnostics
| where Category == "Connections" and TimeGenerated > ago(6h)
| summarize count() by bin(TimeGenerated, 5m), OperationName` },
];

const TIMESPANS = [['PT1H', 'last hour'], ['P1D', 'last day'], ['P7D', 'last 7 days'], ['', 'no limit (the query decides)']];

// chartable reports whether a query summarizes over bin(TimeGenerated, …).
export const chartable = (q) => /\|\s*summarize\b[\s\S]*\bbin\s*\(\s*TimeGenerated\s*,/i.test(q);

export function csv(t) {
  const q = (v) => {
    const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  return [t.columns.map((c) => q(c.name)).join(','), ...t.rows.map((r) => r.map(q).join(','))].join('\r\n') + '\r\n';
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// binStep reads the bin size of bin(TimeGenerated, N{s,m,h,d}) in ms.
function binStep(q) {
  const m = /\bbin\s*\(\s*TimeGenerated\s*,\s*(\d+)\s*(ms|s|m|h|d)\s*\)/i.exec(q);
  if (!m) return 0;
  return Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2].toLowerCase()];
}

// toSeries: one series per numeric column and combination of the string
// columns' values, over the first datetime column.
function toSeries(t) {
  const ti = t.columns.findIndex((c) => c.type === 'datetime');
  const nums = t.columns.map((c, i) => ['long', 'int', 'real', 'decimal'].includes(c.type) ? i : -1).filter((i) => i >= 0);
  const keys = t.columns.map((c, i) => c.type === 'string' ? i : -1).filter((i) => i >= 0);
  const m = new Map();
  for (const r of t.rows) {
    for (const ni of nums) {
      const name = [...keys.map((k) => r[k]), nums.length > 1 || !keys.length ? t.columns[ni].name : null].filter((x) => x !== null).join(' · ');
      if (!m.has(name)) m.set(name, []);
      m.get(name).push([Date.parse(r[ti]), Number(r[ni])]);
    }
  }
  const series = [...m.entries()].slice(0, 8).map(([name, points]) => ({ name, points: points.sort((a, b) => a[0] - b[0]) }));
  const ts = t.rows.map((r) => Date.parse(r[ti]));
  return { series, from: Math.min(...ts), to: Math.max(...ts), ok: ti >= 0 && nums.length > 0 && t.rows.length > 0 };
}

export async function render(main, _args, params) {
  const editor = h('textarea', { id: 'kql', class: 'code', spellcheck: 'false', 'aria-describedby': 'kql-help' }, params.get('q') || EXAMPLES[0].query);
  const examples = h('select', { id: 'examples' }, h('option', { value: '' }, 'Examples…'), EXAMPLES.map((e, i) => h('option', { value: String(i) }, e.name)));
  examples.addEventListener('change', () => { if (examples.value !== '') editor.value = EXAMPLES[Number(examples.value)].query; editor.focus(); });
  const timespan = h('select', { id: 'timespan' }, TIMESPANS.map(([v, l]) => h('option', { value: v }, l)));
  const run = h('button', { type: 'submit', id: 'run' }, 'Run');
  const status = h('span', { class: 'muted', id: 'query-status', 'aria-live': 'polite' });
  const errBox = h('div', { id: 'query-error', class: 'error', role: 'alert' });
  const chartBox = h('div', { id: 'query-chart' });
  const tableBox = h('div', { id: 'query-table', class: 'scroll' });
  const exportCSV = h('button', { type: 'button', class: 'secondary', id: 'export-csv', disabled: true }, 'Export CSV');
  const exportJSON = h('button', { type: 'button', class: 'secondary', id: 'export-json', disabled: true }, 'Export JSON');
  let last = null;
  exportCSV.addEventListener('click', () => last && download('query.csv', 'text/csv', csv(last)));
  exportJSON.addEventListener('click', () => last && download('query.json', 'application/json',
    JSON.stringify(last.rows.map((r) => Object.fromEntries(last.columns.map((c, i) => [c.name, r[i]]))), null, 2)));

  const form = h('form', { id: 'query-form' },
    h('label', { for: 'kql' }, 'Query (KQL over AzureDiagnostics)'), editor,
    h('p', { id: 'kql-help', class: 'muted' }, 'Ctrl+Enter runs the query. A query that summarizes over bin(TimeGenerated, …) is also drawn as a chart.'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Examples', examples), h('label', {}, 'Time range', timespan), run, exportCSV, exportJSON, status));
  main.append(h('h1', {}, 'Logs'), card('Query', form, errBox), chartBox, card('Results', tableBox));
  editor.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); } });

  let abort = null;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    abort?.abort();
    abort = new AbortController();
    errBox.replaceChildren();
    status.textContent = 'running…';
    main.dataset.state = 'running';
    run.disabled = true;
    const started = performance.now();
    try {
      const req = { query: editor.value };
      if (timespan.value) req.timespan = timespan.value;
      const body = await call('POST', '/api/v1/query', req, { signal: abort.signal });
      const t = body.tables?.[0] || { columns: [], rows: [] };
      last = t;
      exportCSV.disabled = exportJSON.disabled = false;
      status.textContent = `${t.rows.length} rows in ${Math.round(performance.now() - started)} ms` + (body.error ? ' — ' + body.error.message : '');
      tableBox.replaceChildren(table(t.columns.map((c) => ({ label: c.name, num: ['long', 'int', 'real'].includes(c.type) })),
        t.rows.slice(0, 1000).map((r) => r.map((v) => (v !== null && typeof v === 'object') ? JSON.stringify(v) : v ?? '')), { id: 'results' }));
      chartBox.replaceChildren();
      const step = binStep(editor.value);
      if (chartable(editor.value) && step > 0) {
        const s = toSeries(t);
        if (s.ok) {
          // stacked bars on the bin grid, at most 500 bins
          const from = s.from, n = Math.min(500, Math.floor((s.to - s.from) / step) + 1);
          const buckets = Array.from({ length: n }, (_, i) => from + i * step);
          const series = s.series.map((x) => {
            const values = new Array(n).fill(0);
            for (const [tt, v] of x.points) { const i = Math.round((tt - from) / step); if (i >= 0 && i < n) values[i] += v; }
            return { name: x.name, values };
          });
          chartBox.append(card('Chart', barChart({ label: 'Query result per bin', buckets, step, series, from, to: from + Math.max(n, 12) * step, width: 1300, height: 240 })));
        }
      }
      main.dataset.state = 'done';
    } catch (x) {
      if (x.name === 'AbortError') return;
      last = null;
      exportCSV.disabled = exportJSON.disabled = true;
      const d = x.body?.error?.details?.[0] || x.body?.error?.innererror;
      status.textContent = '';
      tableBox.replaceChildren();
      chartBox.replaceChildren();
      if (d?.line) {
        const lines = editor.value.split('\n');
        const src = lines[d.line - 1] ?? '';
        errBox.append(h('p', { id: 'error-position' }, `line ${d.line}:${d.pos}: ${d.message || x.message}${d.hint ? ' — ' + d.hint : ''}`),
          h('pre', { class: 'mono errline' }, src + '\n' + ' '.repeat(Math.max(0, d.pos - 1)) + '^'));
        // put the cursor on the mistake
        const offset = lines.slice(0, d.line - 1).reduce((a, l) => a + l.length + 1, 0) + Math.max(0, d.pos - 1);
        editor.setSelectionRange(offset, offset);
      } else {
        errBox.append(h('p', {}, x.message));
      }
      main.dataset.state = 'error';
    } finally {
      run.disabled = false;
    }
  });
  return () => abort?.abort();
}
