// Devices: the registry with connection state, status and last activity,
// searched and filtered by the hub (a device query, paged by continuation
// token, so 100,000 devices cost one page at a time).
import { can, deviceQuery, get, sqlString, enc, AV } from './api.js';
import { h, table, fmtTime, fmtNum, pill, toast, card } from './dom.js';
import { latest } from './metrics.js';
import { createDevice, setStatus, deleteDevice, connectionString, confirmButton } from './registry.js';

const PAGE = 50;

export async function render(main, _args, params) {
  const search = h('input', { id: 'search', type: 'search', placeholder: 'id starts with…', value: params.get('q') || '' });
  const state = h('select', { id: 'state-filter' }, ['', 'Connected', 'Disconnected'].map((v) => h('option', { value: v, selected: params.get('state') === v }, v || 'any')));
  const status = h('select', { id: 'status-filter' }, ['', 'enabled', 'disabled'].map((v) => h('option', { value: v, selected: params.get('status') === v }, v || 'any')));
  const countEl = h('span', { class: 'muted', id: 'device-count' });
  const listEl = h('div', { id: 'device-list' });
  const prev = h('button', { type: 'button', class: 'secondary', id: 'prev-page', disabled: true }, 'Previous');
  const next = h('button', { type: 'button', class: 'secondary', id: 'next-page', disabled: true }, 'Next');
  const pageEl = h('span', { class: 'muted' });
  const write = can('RegistryWrite');
  const out = h('pre', { id: 'conn-string', class: 'mono' });

  main.append(h('h1', {}, 'Devices'));
  if (write) {
    const newId = h('input', { id: 'new-device-id', required: true, placeholder: 'device id' });
    const form = h('form', { class: 'toolbar', id: 'create-device' },
      h('label', {}, 'New device id', newId), h('button', { type: 'submit' }, 'Create device'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try { await createDevice(newId.value.trim()); toast(`created ${newId.value}`); newId.value = ''; load(); } catch (x) { toast(x.message, true); }
    });
    main.append(form);
  }
  const filters = h('form', { class: 'toolbar', role: 'search' },
    h('label', {}, 'Search', search), h('label', {}, 'Connection state', state), h('label', {}, 'Status', status),
    h('button', { type: 'submit', id: 'apply-filters' }, 'Apply'), countEl);
  filters.addEventListener('submit', (e) => { e.preventDefault(); pages = ['']; load(); });
  state.addEventListener('change', () => { pages = ['']; load(); });
  status.addEventListener('change', () => { pages = ['']; load(); });
  main.append(filters, card('Registered devices', listEl, h('div', { class: 'toolbar' }, prev, pageEl, next)), out);

  // pages[i] is the continuation token of page i ('' for the first).
  let pages = [''];
  let nextToken = '';
  prev.addEventListener('click', () => { pages.pop(); load(); });
  next.addEventListener('click', () => { pages.push(nextToken); load(); });

  const where = () => {
    const c = [];
    if (search.value.trim()) c.push(`STARTSWITH(deviceId, ${sqlString(search.value.trim())})`);
    if (state.value) c.push(`connectionState = ${sqlString(state.value)}`);
    if (status.value) c.push(`status = ${sqlString(status.value)}`);
    return c.length ? ' WHERE ' + c.join(' AND ') : '';
  };

  const actions = (d) => {
    const id = d.deviceId;
    const cells = [h('button', { type: 'button', class: 'secondary', 'data-action': 'connstring', onclick: async () => {
      try { out.textContent = await connectionString(id); } catch (e) { toast(e.message, true); }
    } }, 'Connection string')];
    if (write) {
      const to = d.status === 'enabled' ? 'disabled' : 'enabled';
      cells.push(h('button', { type: 'button', class: 'secondary', 'data-action': 'toggle', onclick: async () => {
        try { await setStatus(id, to); toast(`${id} ${to}`); load(); } catch (e) { toast(e.message, true); }
      } }, to === 'disabled' ? 'Disable' : 'Enable'));
      cells.push(confirmButton('Delete', async () => { await deleteDevice(id); toast(`${id} deleted`); load(); }, { 'data-action': 'delete' }));
    }
    return h('span', { class: 'row-actions' }, cells);
  };

  // countMatching fills in how many devices match, after the page is
  // drawn: from the metrics' registry counts when the filter allows (O(1)),
  // else from the registry's sorted ids (/ui/devices/count: exact in
  // O(log n) for a search alone; with a state or status filter it looks at
  // up to 20,000 devices and otherwise says "at least", with a button for
  // the exact count). A policy without RegistryRead counts with a device
  // query (a scan of every twin).
  let countSeq = 0;
  async function countMatching(exact) {
    const seq = ++countSeq;
    countEl.replaceChildren('counting…');
    delete countEl.dataset.total;
    delete countEl.dataset.atLeast;
    try {
      let total = null, bound = null;
      if (!search.value.trim() && can('RegistryRead')) {
        const m = await latest(['totalDeviceCount', 'connectedDeviceCount', 'enabledDeviceCount']);
        if (!state.value && !status.value) total = m.totalDeviceCount;
        else if (state.value === 'Connected' && !status.value) total = m.connectedDeviceCount;
        else if (state.value === 'Disconnected' && !status.value && m.totalDeviceCount !== null) total = m.totalDeviceCount - m.connectedDeviceCount;
        else if (!state.value && status.value === 'enabled') total = m.enabledDeviceCount;
        else if (!state.value && status.value === 'disabled' && m.totalDeviceCount !== null) total = m.totalDeviceCount - m.enabledDeviceCount;
      }
      if ((total === null || total === undefined) && can('RegistryRead')) {
        const p = new URLSearchParams({ prefix: search.value.trim(), state: state.value, status: status.value });
        if (exact) p.set('exact', '1');
        const c = await get('/ui/devices/count?' + p);
        if (c.exact) total = c.count; else bound = c;
      }
      if ((total === null || total === undefined) && !bound) total = (await deviceQuery('SELECT COUNT() AS n FROM devices' + where())).items[0]?.n ?? 0;
      if (seq !== countSeq) return;
      if (bound) {
        countEl.dataset.atLeast = bound.count;
        countEl.replaceChildren(`≥ ${fmtNum(bound.count)} matching (${fmtNum(bound.examined)} of ${fmtNum(bound.candidates)} devices checked) `,
          h('button', { type: 'button', class: 'secondary', id: 'count-exact', onclick: () => countMatching(true) }, 'Count all'));
      } else {
        countEl.dataset.total = total;
        countEl.textContent = `${fmtNum(total)} matching`;
      }
    } catch (e) { if (seq === countSeq) countEl.textContent = 'count failed: ' + e.message; }
  }

  async function load() {
    const query = 'SELECT * FROM devices' + where();
    try {
      let items, cont = '';
      if (can('ServiceConnect')) {
        const page = await deviceQuery(query, PAGE, pages.at(-1));
        items = page.items; cont = page.continuation;
        if (pages.length === 1) countMatching();
      } else {
        // RegistryRead alone cannot query: the registry list (first 1000)
        const all = await get(`/devices/?top=1000&${AV}`);
        const q = search.value.trim();
        items = all.filter((d) => (!q || d.deviceId.startsWith(q)) && (!state.value || d.connectionState === state.value) && (!status.value || d.status === status.value)).slice(0, PAGE);
        countEl.textContent = 'first 1000 of the registry (this policy cannot run device queries)';
      }
      nextToken = cont;
      next.disabled = !cont;
      prev.disabled = pages.length <= 1;
      pageEl.textContent = `page ${pages.length}`;
      listEl.replaceChildren(items.length ? table(['Device', 'State', 'Status', 'Last activity', 'Auth', 'Actions'],
        items.map((d) => [h('a', { href: '#/device/' + enc(d.deviceId) }, d.deviceId), pill(d.connectionState), pill(d.status),
          fmtTime(d.lastActivityTime), d.authenticationType || d.authentication?.type || '', actions(d)]), { id: 'devices-table' })
        : h('p', { class: 'muted' }, 'No device matches.'));
      main.dataset.loaded = String(Date.now());
    } catch (e) {
      listEl.replaceChildren(h('p', { class: 'error' }, e.message));
    }
  }
  await load();
}
