// Subscriptions: each event subscription's state and delivery figures,
// its dead letters, and their replay.
import { can, get, call, enc } from './api.js';
import { h, card, table, fmtNum, fmtTime, pill, toast } from './dom.js';

export async function render(main) {
  main.append(h('h1', {}, 'Subscriptions'));
  if (!can('ServiceConnect')) {
    main.append(h('p', { class: 'muted' }, 'Subscriptions need a policy with ServiceConnect.'));
    return;
  }
  const list = h('div', { id: 'subscription-list' });
  const detail = h('div', { id: 'subscription-detail' });
  main.append(card('Event subscriptions', list), detail);
  const timer = setInterval(() => load(false), 10000);
  let selected = '';

  async function load(openFirst) {
    try {
      const { subscriptions = [] } = await get('/api/v1/subscriptions');
      const statuses = await Promise.all(subscriptions.map((s) => get(`/api/v1/subscriptions/${enc(s.name)}/status?deliveries=1`).catch(() => null)));
      list.replaceChildren(subscriptions.length ? table(['Name', 'Endpoint', 'State', { label: 'Delivered', num: true }, { label: 'Retrying', num: true },
        { label: 'Dead-lettered', num: true }, { label: 'Failed attempts', num: true }, ''],
      subscriptions.map((s, i) => {
        const d = statuses[i]?.delivery || {};
        return [s.name, `${s.destination?.endpointType || ''} ${s.destination?.properties?.endpointUrl || ''}`, pill(s.provisioningState || ''),
          fmtNum(d.delivered), fmtNum(d.retrying), fmtNum(d.deadLettered), fmtNum(d.failedAttempts),
          h('button', { type: 'button', class: 'secondary', 'data-sub': s.name, onclick: () => { selected = s.name; deadLetters(s.name); } }, 'Dead letters')];
      }), { id: 'subscriptions-table' }) : h('p', { class: 'muted' }, 'No subscription. Create one with `tether sub create`.'));
      if (openFirst && subscriptions.length) { selected = subscriptions[0].name; }
      if (selected) await deadLetters(selected);
    } catch (e) { list.replaceChildren(h('p', { class: 'error' }, e.message)); }
  }

  async function deadLetters(name) {
    try {
      const body = await get(`/api/v1/subscriptions/${enc(name)}/deadletters`);
      const dls = body.deadLetters || [];
      const checks = dls.map((d) => h('input', { type: 'checkbox', value: d.id || d.event?.id || '', 'aria-label': 'select ' + (d.id || '') }));
      const replay = async (req) => {
        try {
          const r = await call('POST', `/api/v1/subscriptions/${enc(name)}/deadletters/replay`, req);
          toast(`replayed ${r.replayed}` + (r.notFound?.length ? `; not found: ${r.notFound.join(', ')}` : ''));
          detail.dataset.replayed = String(r.replayed);
          load(false);
        } catch (e) { toast(e.message, true); }
      };
      const buttons = h('div', { class: 'toolbar' },
        h('button', { type: 'button', id: 'replay-all', disabled: !dls.length, onclick: () => replay({ all: true }) }, 'Replay all'),
        h('button', { type: 'button', class: 'secondary', id: 'replay-selected', disabled: !dls.length, onclick: () => {
          const ids = checks.filter((c) => c.checked).map((c) => c.value);
          if (ids.length) replay({ ids }); else toast('select dead letters first', true);
        } }, 'Replay selected'));
      detail.replaceChildren(card(`Dead letters of ${name} (${dls.length})`, buttons,
        dls.length ? h('div', { class: 'scroll' }, table(['', 'Event', 'Type', 'Device', 'Reason', { label: 'Attempts', num: true }, 'Last outcome', 'Dead-lettered'],
          dls.map((d, i) => {
            const ev = d.event || d;
            return [checks[i], ev.id || '', (ev.eventType || ev.type || '').replace('Microsoft.Devices.', ''), ev.data?.deviceId || ev.subject || '',
              d.deadLetterReason || d.deadletterreason || '', fmtNum(d.deliveryAttempts ?? d.deliveryattempts), d.lastDeliveryOutcome || d.lastdeliveryoutcome || '',
              fmtTime(d.publishTime || d.publishtime)];
          }), { id: 'deadletters-table' })) : h('p', { class: 'muted', id: 'no-deadletters' }, 'No dead letters.')));
      detail.dataset.count = String(dls.length);
    } catch (e) { detail.replaceChildren(h('p', { class: 'error' }, e.message)); }
  }
  await load(true);
  return () => clearInterval(timer);
}
