// Small DOM helpers: h() builds elements (text is always text, never
// HTML), plus formatting and notices.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  if (isNaN(d) || d.getTime() <= 0) return '';
  return d.toLocaleString(undefined, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

export const fmtNum = (n) => (n === undefined || n === null) ? '' : Number(n).toLocaleString();

export function toast(msg, bad) {
  const box = document.getElementById('toast');
  const el = h('div', { class: bad ? 'bad' : '' }, msg);
  box.append(el);
  setTimeout(() => el.remove(), 5000);
}

// table renders rows (arrays of cells) under headers.
export function table(headers, rows, attrs = {}) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', class: x.num ? 'num' : '' }, x.label ?? x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h('td', { class: headers[i]?.num ? 'num' : '' }, c))))));
}

export const pill = (v) => h('span', { class: 'pill ' + String(v).replace(/\s+/g, '') }, v);

export function card(title, ...children) {
  return h('section', { class: 'card', 'aria-label': title }, h('h2', {}, title), ...children);
}

// ago parses "1h", "6h", "1d" into milliseconds.
export function ms(span) {
  const m = /^(\d+)([smhd])$/.exec(span);
  return m ? Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]] : 36e5;
}
