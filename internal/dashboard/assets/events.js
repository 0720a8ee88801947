// Events: the hub's event feed live, filtered by device and type. At most
// MAX rows are kept, so a tail left open holds steady memory.
import { can, enc } from './api.js';
import { h, card, fmtTime } from './dom.js';
import { stream } from './live.js';

const TYPES = ['DeviceConnected', 'DeviceDisconnected', 'DeviceCreated', 'DeviceDeleted', 'DeviceTelemetry'];
const MAX = 500;

export async function render(main, _args, params) {
  if (!can('ServiceConnect')) {
    main.append(h('h1', {}, 'Events'), h('p', { class: 'muted' }, 'The live event feed needs a policy with ServiceConnect.'));
    return;
  }
  const device = h('input', { id: 'event-device', placeholder: 'all devices', value: params.get('device') || '' });
  const boxes = TYPES.map((t) => h('input', { type: 'checkbox', id: 'type-' + t, value: t, checked: t !== 'DeviceTelemetry' }));
  const pause = h('button', { type: 'button', class: 'secondary', id: 'pause', 'aria-pressed': 'false' }, 'Pause');
  const clear = h('button', { type: 'button', class: 'secondary', id: 'clear' }, 'Clear');
  const state = h('span', { class: 'muted', id: 'live-state', 'aria-live': 'polite' });
  const body = h('tbody', { id: 'event-rows' });
  const form = h('form', { class: 'toolbar' }, h('label', {}, 'Device', device),
    h('fieldset', { class: 'field' }, h('legend', {}, 'Types'), boxes.map((b) => h('label', {}, b, ' ' + b.value))),
    h('button', { type: 'submit' }, 'Apply'), pause, clear, state);
  main.append(h('h1', {}, 'Events'), form, card('Live events (newest first)',
    h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, ['Time', 'Type', 'Device', 'Detail'].map((x) => h('th', { scope: 'col' }, x)))), body))));

  let close = null, paused = false;
  const add = (ev) => {
    if (paused) return;
    const d = ev.data || {};
    const t = d.tether || {};
    const detail = ev.eventType?.endsWith('Disconnected') ? `${t.resultType || ''} ${t.reason || ''}`.trim()
      : ev.eventType?.endsWith('Connected') ? (t.tokenRenewal ? 'token renewal' : (t.protocol || '')) : '';
    body.prepend(h('tr', {}, h('td', {}, fmtTime(ev.eventTime)), h('td', {}, (ev.eventType || '').replace('Microsoft.Devices.', '')),
      h('td', {}, h('a', { href: '#/device/' + enc(d.deviceId || '') }, d.deviceId || ev.subject || '')), h('td', {}, detail)));
    while (body.rows.length > MAX) body.lastElementChild.remove();
  };
  const start = () => {
    close?.();
    const types = boxes.filter((b) => b.checked).map((b) => b.value);
    let q = '/api/v1/events?type=' + (types.length ? types.join(',') : 'All');
    if (device.value.trim()) q += '&device=' + enc(device.value.trim());
    close = stream(q, add, (s) => { state.textContent = s; });
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); start(); });
  pause.addEventListener('click', () => { paused = !paused; pause.textContent = paused ? 'Resume' : 'Pause'; pause.setAttribute('aria-pressed', String(paused)); });
  clear.addEventListener('click', () => body.replaceChildren());
  start();
  return () => close?.();
}
