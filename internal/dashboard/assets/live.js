// Live feeds over the hub's Server-Sent Event streams. EventSource
// reconnects by itself; the page closes its feeds when it is left, so a
// page open for a day keeps one connection and bounded buffers.
let openStreams = 0;
// tetherOpenStreams tells the browser tests how many feeds are open (one
// page's at most: leaving a page closes its feeds).
globalThis.tetherOpenStreams = () => openStreams;

export function stream(path, onData, onState) {
  let es = null, closed = false, retry = null;
  openStreams++;
  const open = () => {
    if (closed) return;
    es = new EventSource(path, { withCredentials: true });
    es.onopen = () => onState?.('live');
    es.onmessage = (m) => { try { onData(JSON.parse(m.data)); } catch { /* not JSON: skip */ } };
    es.addEventListener('dropped', (m) => onState?.('dropped ' + JSON.parse(m.data).dropped));
    es.onerror = () => {
      onState?.('reconnecting');
      if (es.readyState === EventSource.CLOSED) { es = null; retry = setTimeout(open, 3000); }
    };
  };
  open();
  return () => {
    if (closed) return;
    closed = true;
    openStreams--;
    clearTimeout(retry);
    es?.close();
  };
}

// debounce calls fn once, wait after the first of a burst of calls; calls
// while it waits join that one. A steady stream of events therefore runs
// fn every wait, never starving it (a trailing debounce would).
export function debounce(fn, wait) {
  let t = null;
  const d = () => { if (t === null) t = setTimeout(() => { t = null; fn(); }, wait); };
  d.cancel = () => { clearTimeout(t); t = null; };
  return d;
}
