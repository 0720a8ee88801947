// Alerts: the rules with their state and firing instances, and the
// history of transitions. Rules come from the hub's rules file; the
// owner may ask for a reload.
import { can, get, call, isOwner } from './api.js';
import { h, card, table, fmtTime, pill, toast } from './dom.js';

export async function render(main) {
  main.append(h('h1', {}, 'Alerts'));
  if (!can('ServiceConnect')) {
    main.append(h('p', { class: 'muted' }, 'Alerts need a policy with ServiceConnect.'));
    return;
  }
  const rules = h('div', { id: 'alert-rules' });
  const hist = h('div', { id: 'alert-history', class: 'scroll' });
  if (isOwner()) {
    main.append(h('div', { class: 'toolbar' }, h('button', { type: 'button', id: 'reload-rules', onclick: async () => {
      try { const r = await call('POST', '/api/v1/alerts/reload', {}); toast(`reloaded ${r.rules} rules from ${r.file}`); load(); } catch (e) { toast(e.message, true); }
    } }, 'Reload rules file')));
  }
  main.append(card('Rules', rules), card('History', hist));
  async function load() {
    try {
      const [{ rules: rs = [] }, { history = [] }] = await Promise.all([get('/api/v1/alerts'), get('/api/v1/alerts/history')]);
      rules.replaceChildren(rs.length ? table(['Rule', 'Kind', 'Severity', 'Condition', 'State', 'Last evaluated', 'Error'],
        rs.map((r) => [r.name, r.kind, r.severity, r.metric ? `${r.timeAggregation} ${r.metric} ${r.operator} ${r.threshold} over ${r.windowSize}` : (r.query || '').slice(0, 80),
          pill(r.state || ''), fmtTime(r.lastEvaluated), r.lastError || '']), { id: 'rules-table' }) : h('p', { class: 'muted' }, 'No rules: start the hub with --rules FILE.'));
      hist.replaceChildren(history.length ? table(['Time', 'Rule', 'Condition', 'Severity', 'Value', 'Dimensions'],
        history.slice().reverse().slice(0, 300).map((x) => [fmtTime(x.time), x.alertRule, pill(x.monitorCondition), x.severity, x.metricValue ?? '',
          Object.entries(x.dimensions || {}).map(([k, v]) => `${k}=${v}`).join(' ')])) : h('p', { class: 'muted' }, 'No transitions yet.'));
    } catch (e) { rules.replaceChildren(h('p', { class: 'error' }, e.message)); }
  }
  await load();
  const t = setInterval(load, 15000);
  return () => clearInterval(t);
}
