// Diagnostic settings: where the hub's resource logs go.
import { can, get } from './api.js';
import { h, card, table } from './dom.js';

export async function render(main) {
  main.append(h('h1', {}, 'Diagnostic settings'));
  if (!can('ServiceConnect')) {
    main.append(h('p', { class: 'muted' }, 'Diagnostic settings need a policy with ServiceConnect.'));
    return;
  }
  const box = h('div', { id: 'diag-settings' });
  main.append(card('Settings', box), h('p', { class: 'muted' }, 'Change them with `tether diag` (owner rights).'));
  try {
    const { value = [] } = await get('/api/v1/diagnostic-settings');
    box.replaceChildren(value.length ? table(['Name', 'Categories', 'Destination', 'Definition'],
      value.map((s) => {
        const p = s.properties || s;
        const cats = (p.logs || []).filter((l) => l.enabled !== false).map((l) => l.category || l.categoryGroup).join(', ');
        const dest = Object.keys(p).filter((k) => /Id$|url|Url|path|Path/.test(k)).map((k) => `${k}: ${p[k]}`).join('; ');
        return [s.name, cats, dest, h('details', {}, h('summary', {}, 'JSON'), h('pre', { class: 'mono' }, JSON.stringify(s, null, 2)))];
      }), { id: 'diag-table' }) : h('p', { class: 'muted' }, 'No diagnostic setting.'));
  } catch (e) { box.replaceChildren(h('p', { class: 'error' }, e.message)); }
}
