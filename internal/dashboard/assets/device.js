// Device: its identity and state, a timeline of its sessions with every
// disconnect's code and reason, refusals and renewals (from the
// Connections log), its log records, its diagnosis, its twin, direct
// methods and C2D messages. Live: its events trigger a reload of the log.
import { can, get, call, enc, AV } from './api.js';
import { h, card, table, fmtTime, pill, toast, ms } from './dom.js';
import { timeline } from './chart.js';
import { stream, debounce } from './live.js';
import { devicePath, setStatus, deleteDevice, connectionString, confirmButton } from './registry.js';

const SPANS = ['fit', '1h', '6h', '24h', '7d'];

function props(rec) {
  try { return typeof rec.properties_s === 'string' ? JSON.parse(rec.properties_s) : rec.properties_s || {}; } catch { return {}; }
}

// buildTimeline turns Connections records (oldest first) into session
// bars and marks. Sessions are closed oldest first: during a takeover the
// new session's connect may be logged before the old one's disconnect.
export function buildTimeline(records, from, to) {
  const sessions = [], marks = [], open = [];
  for (const r of records) {
    const t = Date.parse(r.TimeGenerated);
    const p = props(r);
    const code = String(r.ResultType ?? '');
    if (r.OperationName === 'deviceConnect') {
      if (r.Level === 'Error') {
        marks.push({ t, kind: 'refusal', code, short: `${code} refused`, label: `refused ${code} ${r.ResultDescription || ''} ${p.errorMessage || ''}`.trim() });
        continue;
      }
      const renewed = !!p.tokenRenewal;
      if (renewed) marks.push({ t, kind: 'renewal', code: 'renewal', short: 'renewal', label: 'token renewal (reconnect with a new SAS token)' });
      open.push({ start: t, renewed, protocol: p.protocol || '' });
    } else if (r.OperationName === 'deviceDisconnect') {
      const s = open.shift() || { start: from, protocol: p.protocol || '' };
      sessions.push({ ...s, end: t, label: `session ${new Date(s.start).toLocaleTimeString()}–${new Date(t).toLocaleTimeString()} ${s.protocol}` });
      const why = r.ResultDescription || p.errorMessage || '';
      marks.push({ t, kind: 'drop', code, short: `${code} ${why}`.trim(), label: `disconnect ${code} ${why} ${p.errorMessage && p.errorMessage !== why ? p.errorMessage : ''}`.trim() });
    }
  }
  for (const s of open) sessions.push({ ...s, end: to, label: `session since ${new Date(s.start).toLocaleTimeString()} (connected) ${s.protocol}` });
  return { sessions, marks };
}

export async function render(main, args, params) {
  const id = args[0];
  if (!id) { main.append(h('p', {}, 'No device named.')); return; }
  const span = SPANS.includes(params.get('span')) ? params.get('span') : 'fit';
  const abort = new AbortController();
  let closeStream = null;
  const sc = can('ServiceConnect'), write = can('RegistryWrite');

  const head = h('div', { id: 'device-head' });
  const tl = h('div', { id: 'timeline' });
  const logBox = h('div', { id: 'device-logs', class: 'scroll' });
  const diagBox = h('div', { id: 'diagnosis' });
  const twinBox = h('pre', { id: 'twin', class: 'mono scroll' });
  const liveEl = h('span', { class: 'muted', id: 'live-state' });
  const spanSel = h('select', { id: 'span', onchange: () => { location.hash = `#/device/${enc(id)}?span=${spanSel.value}`; } },
    SPANS.map((s) => h('option', { value: s, selected: s === span }, s === 'fit' ? 'fit to activity (last 24h)' : 'last ' + s)));

  main.append(h('h1', {}, 'Device ', h('span', { class: 'mono' }, id)), head,
    h('div', { class: 'toolbar' }, h('label', {}, 'Time range', spanSel), liveEl),
    card('Sessions and disconnects', tl, h('p', { class: 'legend' },
      h('span', {}, h('i', { class: 'c2' }), 'session'), h('span', {}, h('i', { class: 'c3' }), 'disconnect (code, reason)'),
      h('span', {}, h('i', { class: 'c1' }), 'refusal'), h('span', {}, h('i', { class: 'c0' }), 'token renewal'))),
    h('div', { class: 'row' }, card('Diagnosis', diagBox), card('Log records', logBox)));

  async function loadHead() {
    try {
      const d = await get(devicePath(id), { signal: abort.signal });
      const buttons = [h('button', { type: 'button', class: 'secondary', id: 'show-connstring', onclick: async () => {
        try { cs.textContent = await connectionString(id); } catch (e) { toast(e.message, true); }
      } }, 'Show connection string')];
      if (write) {
        const to = d.status === 'enabled' ? 'disabled' : 'enabled';
        buttons.push(h('button', { type: 'button', class: 'secondary', 'data-action': 'toggle', onclick: async () => {
          try { await setStatus(id, to); toast(`${id} ${to}`); loadHead(); } catch (e) { toast(e.message, true); }
        } }, to === 'disabled' ? 'Disable' : 'Enable'));
        buttons.push(confirmButton('Delete', async () => { await deleteDevice(id); toast(`${id} deleted`); location.hash = '#/devices'; }, { 'data-action': 'delete' }));
      }
      const cs = h('pre', { class: 'mono', id: 'conn-string' });
      head.replaceChildren(h('div', { class: 'toolbar' }, pill(d.connectionState), pill(d.status),
        h('span', { class: 'muted' }, 'last activity ' + (fmtTime(d.lastActivityTime) || 'never')),
        h('span', { class: 'muted' }, 'auth ' + (d.authentication?.type || '')), ...buttons), cs);
    } catch (e) { head.replaceChildren(h('p', { class: 'error' }, e.message)); }
  }

  let newestLogged = 0;
  async function loadLogs() {
    const since = span === 'fit' ? '24h' : span;
    const to = Date.now();
    let from = to - ms(since);
    try {
      const body = await get(`/api/v1/logs?device=${enc(id)}&since=${since}&limit=5000`, { signal: abort.signal });
      const recs = (body.records || []).slice().sort((a, b) => Date.parse(a.TimeGenerated) - Date.parse(b.TimeGenerated));
      if (span === 'fit' && recs.length) {
        // from a little before the first record, at least the last minute
        const first = Date.parse(recs[0].TimeGenerated);
        from = Math.max(from, Math.min(to - 6e4, first - Math.max(5e3, (to - first) * 0.05)));
      }
      const conn = recs.filter((r) => r.Category === 'Connections');
      newestLogged = conn.length ? Date.parse(conn[conn.length - 1].TimeGenerated) : 0;
      const { sessions, marks } = buildTimeline(conn, from, to);
      tl.replaceChildren(timeline({ label: `Sessions of ${id} over the last ${since}`, from, to, sessions, marks }));
      tl.dataset.marks = marks.map((m) => m.code).join(',');
      logBox.replaceChildren(recs.length ? table(['Time', 'Operation', 'Level', 'Result', 'Description'],
        recs.slice(-200).reverse().map((r) => [fmtTime(r.TimeGenerated), r.OperationName, r.Level, String(r.ResultType ?? ''), r.ResultDescription || ''])) : h('p', { class: 'muted' }, 'No records in this range.'));
    } catch (e) { if (!abort.signal.aborted) tl.replaceChildren(h('p', { class: 'error' }, e.message)); }
  }

  async function loadDiagnosis() {
    try {
      const d = await get(`/api/v1/devices/${enc(id)}/diagnosis`, { signal: abort.signal });
      diagBox.replaceChildren(h('p', {}, pill(d.status), ' ', d.summary),
        ...(d.verdicts || []).map((v) => h('div', { class: 'card' }, h('strong', {}, v.title), ` (${v.cause}, confidence ${Math.round((v.confidence || 0) * 100)}%)`,
          h('p', {}, v.explanation), v.fix ? h('p', {}, h('em', {}, 'Fix: '), v.fix) : null)),
        h('p', { class: 'muted' }, `connects ${d.numbers?.connects ?? 0} · renewals ${d.numbers?.renewals ?? 0} · reconnects ${d.numbers?.reconnects ?? 0}`));
    } catch (e) { diagBox.replaceChildren(h('p', { class: 'muted' }, e.message)); }
  }

  if (sc) {
    const patch = h('textarea', { id: 'twin-patch', class: 'code', rows: 3, 'aria-describedby': 'twin-patch-help' }, '{"properties":{"desired":{}}}');
    const patchForm = h('form', {}, h('label', { class: 'field', for: 'twin-patch' }, 'Update tags or desired properties (JSON merge patch)'), patch,
      h('p', { class: 'muted', id: 'twin-patch-help' }, 'e.g. {"tags":{"site":"b1"}} or {"properties":{"desired":{"interval":30}}}; null removes a member.'),
      h('button', { type: 'submit', id: 'twin-update' }, 'Update twin'));
    patchForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      let body;
      try { body = JSON.parse(patch.value); } catch (x) { toast('the patch is not JSON: ' + x.message, true); return; }
      try {
        const t = await call('PATCH', `/twins/${enc(id)}?${AV}`, body, { headers: { 'If-Match': '*' } });
        twinBox.textContent = JSON.stringify(t, null, 2);
        toast('twin updated');
      } catch (x) { toast(x.message, true); }
    });
    const twinCard = card('Twin', twinBox, patchForm);
    const methodName = h('input', { id: 'method-name', required: true, placeholder: 'reboot' });
    const methodPayload = h('textarea', { id: 'method-payload', class: 'code', rows: 2 }, '{}');
    const methodTimeout = h('input', { id: 'method-timeout', type: 'number', min: 5, max: 300, value: 30 });
    const methodOut = h('pre', { id: 'method-result', class: 'mono' });
    const mform = h('form', {}, h('div', { class: 'toolbar' }, h('label', {}, 'Method', methodName), h('label', {}, 'Timeout (s)', methodTimeout)),
      h('label', { class: 'field' }, 'Payload (JSON)', methodPayload), h('button', { type: 'submit' }, 'Invoke'), methodOut);
    mform.addEventListener('submit', async (e) => {
      e.preventDefault();
      let payload;
      try { payload = JSON.parse(methodPayload.value || 'null'); } catch (x) { methodOut.textContent = 'payload is not JSON: ' + x.message; return; }
      methodOut.textContent = 'calling…';
      try {
        const r = await call('POST', `/twins/${enc(id)}/methods?${AV}`, { methodName: methodName.value, payload, responseTimeoutInSeconds: Number(methodTimeout.value) });
        methodOut.textContent = `status ${r.status}\n${JSON.stringify(r.payload, null, 2)}`;
      } catch (x) { methodOut.textContent = x.message; }
    });
    const c2dText = h('textarea', { id: 'c2d-payload', class: 'code', rows: 2 });
    const c2dProps = h('input', { id: 'c2d-props', placeholder: 'k=v,k2=v2' });
    const c2dForm = h('form', {}, h('label', { class: 'field' }, 'Message', c2dText), h('label', { class: 'field' }, 'Properties', c2dProps), h('button', { type: 'submit' }, 'Send to device'));
    c2dForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const properties = {};
      for (const kv of c2dProps.value.split(',').map((s) => s.trim()).filter(Boolean)) {
        const [k, ...v] = kv.split('=');
        properties[k] = v.join('=');
      }
      try {
        const r = await call('POST', `/api/v1/devices/${enc(id)}/messages`, { payload: c2dText.value, properties });
        toast('queued message ' + r.messageId);
      } catch (x) { toast(x.message, true); }
    });
    main.append(h('div', { class: 'row' }, twinCard, card('Direct method', mform), card('Cloud-to-device message', c2dForm)));
  }

  async function loadTwin() {
    if (!sc) return;
    try { twinBox.textContent = JSON.stringify(await get(`/twins/${enc(id)}?${AV}`, { signal: abort.signal }), null, 2); } catch (e) { twinBox.textContent = e.message; }
  }

  // The log writer follows the journal: a record lands after its event,
  // seconds later under load. After an event the page reloads its head
  // and diagnosis once, and the log every second until the log holds a
  // connection record at least as new as the event (at most 30 times).
  const reload = debounce(() => { loadHead(); loadDiagnosis(); }, 700);
  let wantLogged = 0, logTries = 0, logTimer = null;
  const followLog = (ev) => {
    const t = Date.parse(ev?.eventTime || '') || Date.now();
    wantLogged = Math.max(wantLogged, t);
    logTries = 30;
    if (logTimer) return;
    const poll = async () => {
      await loadLogs();
      logTries--;
      logTimer = (newestLogged < wantLogged - 1 && logTries > 0 && !abort.signal.aborted) ? setTimeout(poll, 1000) : null;
    };
    logTimer = setTimeout(poll, 500);
  };
  await Promise.all([loadHead(), loadLogs(), loadDiagnosis(), loadTwin()]);
  if (sc) closeStream = stream(`/api/v1/events?device=${enc(id)}&type=DeviceConnected,DeviceDisconnected,DeviceCreated,DeviceDeleted`, (ev) => { reload(); if (/Device(Dis)?[Cc]onnected$/.test(ev?.eventType || '')) followLog(ev); }, (s) => { liveEl.textContent = 'live: ' + s; });
  const tick = setInterval(loadLogs, 30000);
  return () => { abort.abort(); closeStream?.(); reload.cancel(); clearTimeout(logTimer); clearInterval(tick); };
}
