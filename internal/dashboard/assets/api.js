// The session and the hub's API as the signed-in session calls it: the
// cookie goes by itself; requests that change anything carry the CSRF
// token. A 401 the hub marks as the session's end leads back to sign-in.
export const session = { policy: '', rights: [], csrf: '', hub: '' };
export const AV = 'api-version=2021-04-12';

export async function loadSession() {
  const r = await fetch('/ui/session', { credentials: 'same-origin' });
  if (r.status === 401) { location.replace('/'); throw new Error('signed out'); }
  Object.assign(session, await r.json());
  return session;
}

// sessionEnded goes back to the sign-in page when the hub says the session
// is over; a 401 of the API itself (a right the policy lacks) is an error
// of that call only.
function sessionEnded(r) {
  if (r.status === 401 && r.headers.get('X-Tether-Session-Ended')) location.replace('/');
}

export const can = (right) => session.rights.includes(right);
export const isOwner = () => ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'].every(can);

export class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

// errorText finds the message in the API's error shapes.
function errorText(status, body) {
  if (body?.error?.message) return body.error.message;
  if (body?.Message) return body.Message.replace(/^ErrorCode:[^;]*;/, '');
  return `HTTP ${status}`;
}

// call sends one API request; the answer is the parsed JSON (null when
// empty). opts.headers adds headers; opts.raw returns the Response.
export async function call(method, path, body, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = session.csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin', signal: opts.signal,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (opts.raw) return r;
  const text = await r.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  sessionEnded(r);
  if (!r.ok) throw new ApiError(r.status, errorText(r.status, parsed), parsed);
  return parsed;
}

export const get = (path, opts) => call('GET', path, undefined, opts);

// deviceQuery runs an IoT Hub device query page.
export async function deviceQuery(query, pageSize, continuation) {
  const headers = {};
  if (pageSize) headers['x-ms-max-item-count'] = String(pageSize);
  if (continuation) headers['x-ms-continuation'] = continuation;
  const r = await fetch('/devices/query?' + AV, {
    method: 'POST', credentials: 'same-origin',
    headers: { ...headers, 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf },
    body: JSON.stringify({ query }),
  });
  const body = await r.json().catch(() => null);
  sessionEnded(r);
  if (!r.ok) throw new ApiError(r.status, errorText(r.status, body), body);
  return { items: body, continuation: r.headers.get('x-ms-continuation') || '' };
}

// sqlString quotes s for the device query language.
export const sqlString = (s) => "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
export const enc = encodeURIComponent;
