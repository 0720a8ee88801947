// Device registry actions shared by the Devices and Device pages.
import { call, get, AV, enc, session } from './api.js';
import { h, toast } from './dom.js';

export const devicePath = (id) => `/devices/${enc(id)}?${AV}`;

export async function createDevice(id) {
  return call('PUT', devicePath(id), { deviceId: id });
}

export async function setStatus(id, status) {
  const d = await get(devicePath(id));
  d.status = status;
  return call('PUT', devicePath(id), d, { headers: { 'If-Match': '*' } });
}

export async function deleteDevice(id) {
  return call('DELETE', devicePath(id), undefined, { headers: { 'If-Match': '*' } });
}

export async function connectionString(id) {
  const d = await get(devicePath(id));
  const key = d.authentication?.symmetricKey?.primaryKey;
  if (!key) return `${id} authenticates with an X.509 certificate: HostName=${session.hub};DeviceId=${id};x509=true`;
  return `HostName=${session.hub};DeviceId=${id};SharedAccessKey=${key}`;
}

// confirmButton asks once more (a second click within 4 s) before act.
export function confirmButton(label, act, attrs = {}) {
  let armed = null;
  const b = h('button', { type: 'button', class: 'danger', ...attrs }, label);
  b.addEventListener('click', async () => {
    if (!armed) {
      b.textContent = 'Click again to ' + label.toLowerCase();
      armed = setTimeout(() => { armed = null; b.textContent = label; }, 4000);
      return;
    }
    clearTimeout(armed); armed = null; b.textContent = label;
    b.disabled = true;
    try { await act(); } catch (e) { toast(e.message, true); } finally { b.disabled = false; }
  });
  return b;
}
