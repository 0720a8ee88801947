// Fleet: connected devices now and over time, connects and disconnects
// per interval, renewals apart from real drops, alerts firing,
// mass-disconnect incidents and the most flapping devices. Live: every
// connection event (SSE) schedules a recount.
import { can, deviceQuery, get, enc } from './api.js';
import { h, card, table, fmtNum, fmtTime, pill } from './dom.js';
import { lineChart, barChart } from './chart.js';
import { stream } from './live.js';
import { RANGES, metric, merge, buckets, latest } from './metrics.js';

export async function render(main, _args, params) {
  const range = RANGES.find((r) => r.value === params.get('range')) || RANGES[0];
  const abort = new AbortController();
  const timers = [];
  let closeStream = null;

  const connectedEl = h('div', { class: 'value', id: 'connected-now', 'aria-live': 'polite' }, '…');
  const totalEl = h('div', { class: 'value', id: 'registered' }, '…');
  const flapEl = h('div', { class: 'value', id: 'flapping-count' }, '…');
  const alertEl = h('div', { class: 'value', id: 'alerts-firing' }, '…');
  const liveEl = h('span', { class: 'muted', id: 'live-state' }, '');
  const select = h('select', { id: 'range', onchange: () => { location.hash = '#/fleet?range=' + select.value; } },
    RANGES.map((r) => h('option', { value: r.value, selected: r === range }, r.label)));
  const connChart = h('div', { id: 'chart-connected' });
  const connectsChart = h('div', { id: 'chart-connects' });
  const dropsChart = h('div', { id: 'chart-disconnects' });
  const renewChart = h('div', { id: 'chart-renewals' });
  const alertsBox = h('div', { id: 'alerts-box' });
  const incBox = h('div', { id: 'incidents-box' });
  const flapBox = h('div', { id: 'flapping-box' });

  main.append(
    h('h1', {}, 'Fleet'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Time range', select), liveEl),
    h('div', { class: 'tiles' },
      h('div', { class: 'card tile' }, connectedEl, h('div', { class: 'label' }, 'connected now')),
      h('div', { class: 'card tile' }, totalEl, h('div', { class: 'label' }, 'registered devices')),
      h('div', { class: 'card tile' }, flapEl, h('div', { class: 'label' }, 'flapping devices')),
      h('div', { class: 'card tile' }, alertEl, h('div', { class: 'label' }, 'alerts firing'))),
    h('div', { class: 'grid' },
      card('Connected devices', connChart),
      card('Connection attempts by result', connectsChart),
      card('Disconnects by reason', dropsChart),
      card('Token renewals and real drops', renewChart, h('p', { class: 'muted' },
        'Renewals: reconnects that renewed a SAS token (no loss of service). Real drops: every other disconnect.')),
      card('Alerts firing', alertsBox),
      card('Mass-disconnect incidents', incBox),
      card('Most flapping devices', flapBox)));

  // live points of the connected count, appended to the history chart
  const livePoints = [];
  let history = [];
  const drawConnected = () => {
    const now = Date.now();
    const pts = history.concat(livePoints.filter((p) => p[0] > (history.at(-1)?.[0] ?? 0)));
    connChart.replaceChildren(lineChart({ label: 'Connected devices over ' + range.label.toLowerCase(), series: [{ name: 'connected', points: pts }], from: now - range.ms, to: now }));
  };

  // count: the metrics' newest samples (O(1)); a policy without
  // RegistryRead counts with device queries instead.
  async function count() {
    if (can('RegistryRead')) {
      const m = await latest(['connectedDeviceCount', 'totalDeviceCount'], abort.signal);
      return { connected: m.connectedDeviceCount ?? 0, total: m.totalDeviceCount ?? 0 };
    }
    const [c, t] = await Promise.all([
      deviceQuery("SELECT COUNT() AS n FROM devices WHERE connectionState = 'Connected'"),
      deviceQuery('SELECT COUNT() AS n FROM devices')]);
    return { connected: c.items[0]?.n ?? 0, total: t.items[0]?.n ?? 0 };
  }
  async function recount() {
    try {
      const { connected, total } = await count();
      connectedEl.textContent = fmtNum(connected);
      connectedEl.dataset.count = connected;
      totalEl.textContent = fmtNum(total);
      // at most one live point per 5 s, none older than the range:
      // bounded whatever the event rate and however long the page is open
      const now = Date.now();
      if (livePoints.length && now - livePoints.at(-1)[0] < 5000) livePoints[livePoints.length - 1] = [now, connected];
      else livePoints.push([now, connected]);
      while (livePoints.length && livePoints[0][0] < now - range.ms) livePoints.shift();
      drawConnected();
    } catch (e) { if (!abort.signal.aborted) connectedEl.textContent = '?'; }
  }

  // Renewals and real drops: renewals are the connects the collector
  // marked TokenRenewal (metric series, read with the connects chart's, so
  // no range costs more than the charts); real drops are the other
  // disconnects.
  function drawRenewals(d, renewals, now) {
    const rb = buckets(renewals, range, now);
    const rn = rb.series[0]?.values || d.buckets.map(() => 0);
    const totals = d.buckets.map((_, i) => d.series.reduce((a, s) => a + s.values[i], 0));
    const real = totals.map((v, i) => Math.max(0, v - rn[i]));
    renewChart.replaceChildren(barChart({ label: 'Renewals and real drops per interval', buckets: d.buckets, step: range.step, from: d.from, to: d.to,
      series: [{ name: 'real drops', values: real }, { name: 'renewals', values: rn }] }));
    renewChart.dataset.renewals = rn.reduce((a, v) => a + v, 0);
    renewChart.dataset.state = 'done';
  }

  async function charts() {
    const now = Date.now();
    // connects split by ResultType and TokenRenewal in one read (over
    // days the history's minutes are what a chart costs): by ResultType
    // for their chart, the renewals for theirs
    const [conn, split, drops] = await Promise.all([
      metric('connectedDeviceCount', 'Maximum', range, '', abort.signal),
      metric('deviceConnects', 'Total', range, "ResultType eq '*' and TokenRenewal eq '*'", abort.signal),
      metric('deviceDisconnects', 'Total', range, "Reason eq '*'", abort.signal)]);
    const connects = merge(split, 'ResultType');
    const renewals = merge(split, 'TokenRenewal', (s) => s.dims?.TokenRenewal === 'true');
    history = conn[0]?.points.filter((p) => p[1] !== null) || [];
    drawConnected();
    const c = buckets(connects, range, now);
    connectsChart.replaceChildren(barChart({ label: 'Connection attempts per interval by ResultType', ...c, step: range.step }));
    const d = buckets(drops, range, now);
    dropsChart.replaceChildren(barChart({ label: 'Disconnects per interval by reason', ...d, step: range.step }));
    drawRenewals(d, renewals, now);
  }

  async function insights() {
    const [alerts, inc, flap] = await Promise.all([
      can('ServiceConnect') ? get('/api/v1/alerts', { signal: abort.signal }).catch(() => null) : null,
      get('/api/v1/insights/incidents?limit=5', { signal: abort.signal }).catch(() => null),
      get('/api/v1/insights/flapping?top=10', { signal: abort.signal }).catch(() => null)]);
    const firing = (alerts?.rules || []).filter((r) => r.state === 'Fired');
    alertEl.textContent = alerts ? String(firing.length) : '–';
    alertsBox.replaceChildren(alerts === null ? h('p', { class: 'muted' }, 'This policy cannot read alerts (ServiceConnect).')
      : firing.length ? table(['Rule', 'Severity', 'Description'], firing.map((r) => [h('a', { href: '#/alerts' }, r.name), r.severity, r.description || '']))
        : h('p', { class: 'muted' }, `No alert firing (${(alerts.rules || []).length} rules).`));
    const incs = inc?.incidents || [];
    incBox.replaceChildren(incs.length ? table(['Started', 'State', { label: 'Devices', num: true }, { label: 'Recovered', num: true }, 'Summary'],
      incs.map((i) => [fmtTime(i.start), pill(i.state), fmtNum(i.devices), fmtNum(i.recovered), i.summary]))
      : h('p', { class: 'muted' }, inc ? 'No mass disconnect recorded.' : 'Incidents unavailable.'));
    const fl = flap?.devices || [];
    flapEl.textContent = String(fl.filter((d) => d.flapping).length);
    flapBox.replaceChildren(fl.length ? table(['Device', { label: 'Reconnects (1 h)', num: true }, 'Trend', 'Now'],
      fl.map((d) => [h('a', { href: '#/device/' + enc(d.deviceId) }, d.deviceId), fmtNum(d.score), d.trend, d.connected ? 'connected' : 'disconnected']))
      : h('p', { class: 'muted' }, 'No device reconnected in the last hour.'));
  }

  // The collector samples a moment after the event, later under load: after
  // each event the count is read every 400 ms for 3 s (each read is O(1)),
  // so the last change of a burst shows within about half a second of its
  // sample, whatever the event rate.
  let hotUntil = 0, hotTimer = null;
  const recountSoon = () => {
    hotUntil = Date.now() + 3000;
    if (hotTimer) return;
    const tick = () => {
      recount();
      hotTimer = Date.now() < hotUntil ? setTimeout(tick, 400) : null;
    };
    hotTimer = setTimeout(tick, 150);
  };
  recountSoon.cancel = () => { clearTimeout(hotTimer); hotTimer = null; };
  await Promise.all([recount(), charts().catch((e) => connChart.replaceChildren(h('p', { class: 'error' }, e.message))), insights()]);
  if (can('ServiceConnect')) {
    closeStream = stream('/api/v1/events', () => recountSoon(), (s) => { liveEl.textContent = 'live: ' + s; });
  } else {
    liveEl.textContent = 'updating every 2 s (this policy cannot read the live event stream)';
  }
  timers.push(setInterval(recount, can('ServiceConnect') ? 10000 : 2000));
  timers.push(setInterval(() => { charts().catch(() => {}); insights(); }, 60000));
  return () => { abort.abort(); closeStream?.(); recountSoon.cancel(); timers.forEach(clearInterval); };
}
