// The dashboard shell: loads the session, routes #/page/arg to a page
// module and ends the previous page (its streams and timers) on every
// navigation.
import { loadSession, session, call } from './api.js';
import { toast } from './dom.js';

const pages = {
  fleet: () => import('./fleet.js'),
  devices: () => import('./devices.js'),
  device: () => import('./device.js'),
  logs: () => import('./logs.js'),
  events: () => import('./events.js'),
  subscriptions: () => import('./subscriptions.js'),
  alerts: () => import('./alerts.js'),
  settings: () => import('./settings.js'),
};

let cleanup = null;
let generation = 0;

async function route() {
  const main = document.getElementById('main');
  const hash = location.hash.replace(/^#\/?/, '') || 'fleet';
  const [path, query = ''] = hash.split('?');
  const [name, ...rest] = path.split('/');
  const page = pages[name] ? name : 'fleet';
  if (cleanup) { try { cleanup(); } catch { /* page already gone */ } cleanup = null; }
  const gen = ++generation;
  for (const a of document.querySelectorAll('nav a')) {
    const cur = a.dataset.page === page || (page === 'device' && a.dataset.page === 'devices');
    if (cur) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  main.dataset.page = page;
  main.removeAttribute('data-ready');
  try {
    const mod = await pages[page]();
    if (gen !== generation) return;
    const c = await mod.render(main, rest.map(decodeURIComponent), new URLSearchParams(query));
    if (gen !== generation) { c?.(); return; }
    cleanup = c || null;
    main.dataset.ready = '1';
  } catch (e) {
    if (gen !== generation) return;
    main.append(Object.assign(document.createElement('p'), { className: 'error', textContent: 'This page failed: ' + e.message }));
  }
}

await loadSession();
document.getElementById('who').textContent = `${session.policy} · ${session.rights.join(', ')}`;
document.getElementById('signout').addEventListener('click', async () => {
  try { await call('DELETE', '/ui/session'); } catch (e) { toast(e.message, true); }
  location.replace('/');
});
window.addEventListener('hashchange', route);
route();
