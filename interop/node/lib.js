// Helpers shared by the interop scripts: line-delimited JSON events on stdout for the Go
// driver, diagnostics on stderr, bounded waits, and the https.Agent that points the
// SDKs (which always dial port 443) at the hub's test port.
'use strict';

const https = require('https');

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

let scriptName = 'interop';
function setName(name) {
  scriptName = name;
}

function log(...args) {
  process.stderr.write(`[${scriptName} ${new Date().toISOString()}] ${args.join(' ')}\n`);
}

let exiting = false;
// fail reports an error event and exits non-zero once stdout has drained.
function fail(message, code) {
  if (exiting) return;
  exiting = true;
  out({ event: 'error', message: String(message) });
  log('FAIL:', message);
  process.stdout.write('', () => process.exit(code || 1));
  setTimeout(() => process.exit(code || 1), 500).unref();
}

function envInt(name, def) {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n)) {
    fail(`${name}=${v} is not a number`, 2);
  }
  return n;
}

function errText(err) {
  if (!err) return String(err);
  let s = (err.constructor && err.constructor.name ? err.constructor.name + ': ' : '') + (err.message || String(err));
  if (err.code) s += ` (code ${err.code})`;
  if (err.transportError && err.transportError !== err) s += ` [transport: ${errText(err.transportError)}]`;
  if (err.response && err.response.statusCode) s += ` [HTTP ${err.response.statusCode}]`;
  if (err.responseBody) s += ` body=${String(err.responseBody).slice(0, 300)}`;
  return s;
}

function withTimeout(promise, secs, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${secs}s waiting for ${what}`)), secs * 1000);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// A promise-based waiter for counted events.
class Counter {
  constructor() {
    this.count = 0;
    this.waiters = [];
  }
  inc() {
    this.count++;
    this.waiters = this.waiters.filter((w) => {
      if (this.count >= w.n) {
        w.resolve();
        return false;
      }
      return true;
    });
  }
  atLeast(n) {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

// portAgent dials connectHost:port whatever host the SDK asks for, keeping the TLS
// server name (servername) and trusting ca.
function portAgent(connectHost, port, servername, ca, keepAlive) {
  class PortAgent extends https.Agent {
    createConnection(opts, cb) {
      const o = Object.assign({}, opts, { host: connectHost, port });
      if (!o.servername && servername) o.servername = servername;
      return super.createConnection(o, cb);
    }
  }
  return new PortAgent({ ca, keepAlive });
}

// parseConnectionString splits Key=Value;... into an object.
function parseConnectionString(cs) {
  const fields = {};
  for (const part of cs.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) fields[part.slice(0, i)] = part.slice(i + 1);
  }
  return fields;
}

// pointRestClient makes a service SDK object (Registry, Client) talk to the hub's port.
function pointRestClient(sdkObject, connectHost, port, hostName, ca) {
  const rest = sdkObject._restApiClient;
  if (!rest || typeof rest.setOptions !== 'function') {
    throw new Error('cannot reach the REST client of the service SDK (SDK internals changed?)');
  }
  rest.setOptions({ http: { agent: portAgent(connectHost, port, hostName, ca, true) }, ca });
}

module.exports = { out, setName, log, fail, envInt, errText, withTimeout, Counter, portAgent, parseConnectionString, pointRestClient };
