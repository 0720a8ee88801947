#!/usr/bin/env node
// Drives the OFFICIAL Azure IoT service SDK (azure-iothub Registry, HTTPS REST) against
// a Tether hub: create, get, list, disable, enable and delete a device, checking every
// answer.
//
// The SDK always dials https://<HostName>:443 with no port or CA option (wire doc §6);
// we replace the https.Agent of the Registry's internal REST client (a private field,
// pinned SDK version) with one that dials 127.0.0.1:<PORT>, keeps TLS server name
// HostName and trusts CA_FILE. NODE_EXTRA_CA_CERTS would also do for the trust part.
//
// Output: line-delimited JSON on stdout: {"event":"step","step":"create","device":{...}}
// per step, {"event":"done"} at the end, {"event":"error","message":...} and a non-zero
// exit on any failure or mismatch. With STEP_SYNC=1 the script waits, after each step
// line, for one line on stdin ("ok" continues, anything else aborts), so the driver can
// check the hub's state in between.
//
// Environment:
//   CONNECTION_STRING   HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=...
//   PORT                the hub's HTTPS port (required)
//   CA_FILE             PEM of the CA that signed the hub's certificate (required)
//   CONNECT_HOST        address actually dialled (default 127.0.0.1)
//   DEVICE_ID           device to create (default interop-svc-<pid>)
//   STEP_SYNC           1 = wait for a stdin line after each step
//   STEP_TIMEOUT_SECS   bound on each request / sync wait (default 20)
//   TOTAL_TIMEOUT_SECS  bound on the whole run (default 60)
'use strict';

const fs = require('fs');
const readline = require('readline');
const { Registry } = require('azure-iothub');

const { out, log, fail, envInt, errText, withTimeout, pointRestClient } = require('./lib');
require('./lib').setName('service.js');

class Mismatch extends Error {}
function check(cond, what, got) {
  if (!cond) throw new Mismatch(`${what}; got ${JSON.stringify(got)}`);
}

// A device as printed: keys are shortened so logs do not carry secrets.
function summary(d) {
  if (!d) return d;
  const a = d.authentication || {};
  const k = a.symmetricKey || {};
  return {
    deviceId: d.deviceId,
    status: d.status,
    etag: d.etag,
    generationId: d.generationId,
    connectionState: d.connectionState,
    authType: a.type,
    primaryKeyLen: (k.primaryKey || '').length,
    secondaryKeyLen: (k.secondaryKey || '').length,
  };
}

async function main() {
  const connStr = process.env.CONNECTION_STRING;
  const port = envInt('PORT', 0);
  const caFile = process.env.CA_FILE;
  const connectHost = process.env.CONNECT_HOST || '127.0.0.1';
  const deviceId = process.env.DEVICE_ID || `interop-svc-${process.pid}`;
  const stepSync = process.env.STEP_SYNC === '1';
  const stepTimeout = envInt('STEP_TIMEOUT_SECS', 20);
  const totalTimeout = envInt('TOTAL_TIMEOUT_SECS', 60);

  setTimeout(() => fail(`whole run exceeded TOTAL_TIMEOUT_SECS=${totalTimeout}`, 3), totalTimeout * 1000).unref();

  if (!connStr) return fail('CONNECTION_STRING is required', 2);
  if (!port) return fail('PORT is required', 2);
  if (!caFile) return fail('CA_FILE is required', 2);
  let ca;
  try {
    ca = fs.readFileSync(caFile, 'utf8');
  } catch (e) {
    return fail(`cannot read CA_FILE ${caFile}: ${e.message}`, 2);
  }
  const hostName = (/(?:^|;)HostName=([^;]+)/.exec(connStr) || [])[1];
  if (!hostName) return fail('CONNECTION_STRING has no HostName', 2);

  const registry = Registry.fromConnectionString(connStr);
  try {
    pointRestClient(registry, connectHost, port, hostName, ca);
  } catch (e) {
    return fail(e.message);
  }
  log(`registry for ${hostName}, dialling ${connectHost}:${port}, device ${deviceId}`);

  // STEP_SYNC: one line from stdin per step.
  const lines = [];
  const lineWaiters = [];
  if (stepSync) {
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (l) => {
      const w = lineWaiters.shift();
      if (w) w(l);
      else lines.push(l);
    });
    rl.on('close', () => {
      while (lineWaiters.length) lineWaiters.shift()(null);
    });
  }
  function nextLine() {
    if (lines.length) return Promise.resolve(lines.shift());
    return new Promise((resolve) => lineWaiters.push(resolve));
  }
  async function step(name, device, extra) {
    out(Object.assign({ event: 'step', step: name, device: summary(device) }, extra || {}));
    if (!stepSync) return;
    const l = await withTimeout(nextLine(), stepTimeout, `driver ack after step ${name}`);
    if (l === null || l.trim() !== 'ok') throw new Error(`driver aborted after step ${name}: ${l}`);
  }
  const call = (p, what) =>
    withTimeout(p, stepTimeout, what).catch((e) => {
      throw new Error(`${what} failed: ${errText(e)}`);
    });

  // create: no keys given, the hub generates them.
  const created = (await call(registry.create({ deviceId, status: 'enabled' }), 'create')).responseBody;
  check(created && created.deviceId === deviceId, `create: deviceId should be ${deviceId}`, summary(created));
  check(created.status === 'enabled', 'create: status should be enabled', summary(created));
  const ck = (created.authentication || {}).symmetricKey || {};
  check(ck.primaryKey && ck.secondaryKey, 'create: hub should generate both symmetric keys', summary(created));
  check(Buffer.from(ck.primaryKey, 'base64').length >= 16, 'create: primary key should be base64 of >=16 bytes', ck.primaryKey.length);
  check(created.etag, 'create: etag should be set', summary(created));
  await step('create', created);

  // create again: must be refused as a duplicate.
  try {
    await withTimeout(registry.create({ deviceId }), stepTimeout, 'duplicate create');
    throw new Mismatch('duplicate create should fail with DeviceAlreadyExistsError');
  } catch (e) {
    if (e instanceof Mismatch) throw e;
    check(e.name === 'DeviceAlreadyExistsError' || (e.constructor && e.constructor.name === 'DeviceAlreadyExistsError'),
      'duplicate create: want DeviceAlreadyExistsError', errText(e));
    await step('create-duplicate', null, { error: errText(e) });
  }

  const got = (await call(registry.get(deviceId), 'get')).responseBody;
  check(got && got.deviceId === deviceId, 'get: deviceId', summary(got));
  check(got.status === 'enabled', 'get: status enabled', summary(got));
  const gk = (got.authentication || {}).symmetricKey || {};
  check(gk.primaryKey === ck.primaryKey && gk.secondaryKey === ck.secondaryKey, 'get: keys should equal those returned by create', summary(got));
  await step('get', got);

  const listed = (await call(registry.list(), 'list')).responseBody;
  check(Array.isArray(listed), 'list: want an array', typeof listed);
  const mine = listed.filter((d) => d.deviceId === deviceId);
  check(mine.length === 1, `list: want ${deviceId} exactly once`, listed.map((d) => d.deviceId));
  await step('list', mine[0], { count: listed.length, ids: listed.map((d) => d.deviceId) });

  // disable: the usual read-modify-write with the full device from get (read-only fields
  // and all), as apps do.
  const toDisable = Object.assign({}, got, { status: 'disabled' });
  const disabled = (await call(registry.update(toDisable), 'update (disable)')).responseBody;
  check(disabled && disabled.status === 'disabled', 'update (disable): returned status', summary(disabled));
  const gotDisabled = (await call(registry.get(deviceId), 'get after disable')).responseBody;
  check(gotDisabled.status === 'disabled', 'get after disable: status', summary(gotDisabled));
  const dk = (gotDisabled.authentication || {}).symmetricKey || {};
  check(dk.primaryKey === ck.primaryKey, 'get after disable: keys must survive the update', summary(gotDisabled));
  await step('disable', gotDisabled);

  const enabled = (await call(registry.update(Object.assign({}, gotDisabled, { status: 'enabled' })), 'update (enable)')).responseBody;
  check(enabled && enabled.status === 'enabled', 'update (enable): returned status', summary(enabled));
  const gotEnabled = (await call(registry.get(deviceId), 'get after enable')).responseBody;
  check(gotEnabled.status === 'enabled', 'get after enable: status', summary(gotEnabled));
  await step('enable', gotEnabled);

  await call(registry.delete(deviceId), 'delete');
  try {
    await withTimeout(registry.get(deviceId), stepTimeout, 'get after delete');
    throw new Mismatch('get after delete should fail with DeviceNotFoundError');
  } catch (e) {
    if (e instanceof Mismatch) throw e;
    check(e.name === 'DeviceNotFoundError' || (e.constructor && e.constructor.name === 'DeviceNotFoundError'),
      'get after delete: want DeviceNotFoundError', errText(e));
  }
  await step('delete', null);

  out({ event: 'done', deviceId });
  process.stdout.write('', () => process.exit(0));
}

process.on('unhandledRejection', (e) => fail(`unhandled rejection: ${errText(e)}`));
process.on('uncaughtException', (e) => fail(`uncaught exception: ${errText(e)}`));
main().catch((e) => fail(e instanceof Mismatch ? `mismatch: ${e.message}` : errText(e)));
