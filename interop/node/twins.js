#!/usr/bin/env node
// Drives the OFFICIAL Azure IoT device SDK (azure-iot-device + azure-iot-device-mqtt) and
// service SDK (azure-iothub Registry and Client) against a Tether hub through device
// twins, direct methods and device queries, unmodified:
//   device: open, getTwin, reported patch, desired updates, method handlers;
//   service: getTwin, updateTwin (and a stale etag: 412), invokeDeviceMethod (answered:
//   200; never answered: 504101; offline device: 404103), a device query with paging;
//   then, after a SAS token renewal (a new connection, clean session 0, no re-subscribe),
//   a desired update and a method call must still reach the device.
//
// Output: line-delimited JSON on stdout, {"event":"step","step":<name>,...} per checked
// step, {"event":"done"} at the end, {"event":"error","message":...} and a non-zero exit
// on any failure or mismatch. Diagnostics on stderr.
//
// Environment:
//   DEVICE_CONNECTION_STRING   HostName=localhost;DeviceId=...;SharedAccessKey=...
//   SERVICE_CONNECTION_STRING  HostName=localhost;SharedAccessKeyName=iothubowner;...
//   OFFLINE_DEVICE_ID          a registered device that never connects
//   QUERY_GROUP                the value of tags.group the driver's query devices get
//   QUERY_DEVICES              comma-separated ids to tag and find by query (paged by 2)
//   MQTT_PORT, HTTPS_PORT      the hub's MQTT/TLS and HTTPS ports; CA_FILE its CA
//   TOKEN_VALID_SECS, TOKEN_MARGIN_SECS   renewal every VALID-MARGIN seconds (12, 6)
//   STEP_TIMEOUT_SECS, TOTAL_TIMEOUT_SECS (20, 120)
'use strict';

const fs = require('fs');
const lib = require('./lib');
const { out, log, fail, envInt, errText, withTimeout, Counter, parseConnectionString, pointRestClient } = lib;
const { Client: DeviceClient } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { Registry, Client: ServiceClient } = require('azure-iothub');
lib.setName('twins.js');

class Mismatch extends Error {}
function check(cond, what, got) {
  if (!cond) throw new Mismatch(`${what}; got ${JSON.stringify(got)}`);
}

// expectError runs an operation that must fail and returns the error's text.
async function expectError(p, what) {
  try {
    const r = await p;
    throw new Mismatch(`${what} succeeded: ${JSON.stringify(r && r.result)}`);
  } catch (e) {
    if (e instanceof Mismatch) throw e;
    return errText(e);
  }
}

async function main() {
  const deviceCS = process.env.DEVICE_CONNECTION_STRING;
  const serviceCS = process.env.SERVICE_CONNECTION_STRING;
  const offlineID = process.env.OFFLINE_DEVICE_ID;
  const group = process.env.QUERY_GROUP;
  const queryDevices = (process.env.QUERY_DEVICES || '').split(',').filter(Boolean);
  const mqttPort = envInt('MQTT_PORT', 0);
  const httpsPort = envInt('HTTPS_PORT', 0);
  const caFile = process.env.CA_FILE;
  const valid = envInt('TOKEN_VALID_SECS', 12);
  const margin = envInt('TOKEN_MARGIN_SECS', 6);
  const stepTimeout = envInt('STEP_TIMEOUT_SECS', 20);
  const totalTimeout = envInt('TOTAL_TIMEOUT_SECS', 120);
  setTimeout(() => fail(`whole run exceeded TOTAL_TIMEOUT_SECS=${totalTimeout}`, 3), totalTimeout * 1000).unref();
  if (!deviceCS || !serviceCS || !offlineID || !group || !mqttPort || !httpsPort || !caFile) {
    return fail('DEVICE_CONNECTION_STRING, SERVICE_CONNECTION_STRING, OFFLINE_DEVICE_ID, QUERY_GROUP, MQTT_PORT, HTTPS_PORT and CA_FILE are required', 2);
  }
  const ca = fs.readFileSync(caFile, 'utf8');
  const dev = parseConnectionString(deviceCS);
  const deviceId = dev.DeviceId;
  const hostName = parseConnectionString(serviceCS).HostName;
  const step = (name, extra) => out(Object.assign({ event: 'step', step: name }, extra || {}));

  // Service side: both SDK objects dial the hub's HTTPS port.
  const registry = Registry.fromConnectionString(serviceCS);
  pointRestClient(registry, '127.0.0.1', httpsPort, hostName, ca);
  const service = ServiceClient.fromConnectionString(serviceCS);
  pointRestClient(service, '127.0.0.1', httpsPort, hostName, ca);

  // Device side, with a short token life so that a renewal happens during the run.
  const client = DeviceClient.fromConnectionString(deviceCS.replace(/;+$/, '') + `;GatewayHostName=${dev.HostName}:${mqttPort}`, Mqtt);
  const provider = client._transport && client._transport._authenticationProvider;
  if (!provider || typeof provider.on !== 'function') return fail('cannot reach the SAS authentication provider (SDK internals changed?)');
  const renewed = new Counter();
  provider.on('newTokenAvailable', () => renewed.inc());
  client.on('error', (err) => log('client error:', errText(err)));
  await client.setOptions({ ca: caFile, tokenRenewal: { tokenValidTimeInSeconds: valid, tokenRenewalMarginInSeconds: margin } });

  const calls = new Counter();
  client.onDeviceMethod('echo', (req, res) => {
    calls.inc();
    res.send(200, { echo: req.payload, n: calls.count }).catch((e) => log('method response failed:', errText(e)));
  });
  client.onDeviceMethod('silent', () => log('silent called; not answering'));
  await withTimeout(client.open(), stepTimeout, 'open()');
  step('open');

  const twin = await withTimeout(client.getTwin(), stepTimeout, 'getTwin()');
  check(twin.properties.desired.$version >= 1, 'device twin has desired.$version', twin.properties.desired);
  step('device-get-twin', { desiredVersion: twin.properties.desired.$version });

  // update takes a callback (no promise form in this SDK version).
  const reported = new Promise((resolve, reject) => twin.properties.reported.update({ firmware: '1.2.3', temp: 21 }, (err) => (err ? reject(err) : resolve())));
  await withTimeout(reported, stepTimeout, 'reported update');
  step('device-reported');

  const desired = [];
  const desiredCount = new Counter();
  twin.on('properties.desired', (delta) => {
    desired.push(delta);
    desiredCount.inc();
  });
  // The SDK emits the current desired document once when the listener is added.
  await withTimeout(desiredCount.atLeast(1), stepTimeout, 'initial desired event');
  // The listener's SUBSCRIBE goes out asynchronously; give it a moment to land.
  await new Promise((resolve) => setTimeout(resolve, 300));

  let st = (await withTimeout(registry.getTwin(deviceId), stepTimeout, 'Registry.getTwin')).responseBody;
  check(st.properties.reported.firmware === '1.2.3' && st.properties.reported.temp === 21, 'service sees the reported properties', st.properties.reported);
  check(st.deviceId === deviceId && typeof st.etag === 'string', 'service twin has deviceId and etag', st);
  step('service-get-twin', { etag: st.etag, version: st.version });

  const staleEtag = st.etag;
  st = (await withTimeout(st.update({ tags: { group: 'interop' }, properties: { desired: { interval: 5 } } }), stepTimeout, 'Twin.update')).result;
  check(st.properties.desired.interval === 5 && st.tags.group === 'interop', 'service update applied', st);
  await withTimeout(desiredCount.atLeast(2), stepTimeout, 'desired update on the device');
  check(desired[desired.length - 1].interval === 5, 'device got interval 5', desired[desired.length - 1]);
  step('desired-update', { desiredVersion: st.properties.desired.$version });

  const stale = await expectError(registry.updateTwin(deviceId, { properties: { desired: { interval: 6 } } }, staleEtag), 'update with a stale etag');
  check(/412|InvalidEtag|PreconditionFailed/.test(stale), 'stale etag answered 412', stale);
  step('stale-etag', { error: stale });

  let r = await withTimeout(service.invokeDeviceMethod(deviceId, { methodName: 'echo', payload: { a: 1 }, responseTimeoutInSeconds: 10 }), stepTimeout, 'invokeDeviceMethod echo');
  check(r.result.status === 200 && r.result.payload.echo.a === 1, 'echo answered', r.result);
  step('method-online', { result: r.result });

  const silent = await expectError(service.invokeDeviceMethod(deviceId, { methodName: 'silent', responseTimeoutInSeconds: 5 }), 'a method the device never answers');
  check(/504101|GatewayTimeout/.test(silent), 'unanswered method is 504101', silent);
  step('method-timeout', { error: silent });

  const offline = await expectError(service.invokeDeviceMethod(offlineID, { methodName: 'echo', responseTimeoutInSeconds: 5 }), 'a method on an offline device');
  check(/404103|DeviceNotOnline/.test(offline), 'offline device is 404103', offline);
  step('method-offline', { error: offline });

  // Tag the query devices, then page through them two at a time.
  for (const id of queryDevices) {
    await withTimeout(registry.updateTwin(id, { tags: { group } }, '*'), stepTimeout, `tagging ${id}`);
  }
  const query = registry.createQuery(`SELECT * FROM devices WHERE tags.group = '${group}'`, 2);
  const found = [];
  let pages = 0;
  while (query.hasMoreResults) {
    const page = await withTimeout(query.nextAsTwin(), stepTimeout, 'query page');
    pages++;
    for (const t of page.result) found.push(t.deviceId);
    if (pages > queryDevices.length + 2) throw new Mismatch(`query did not end after ${pages} pages`);
  }
  check(JSON.stringify(found.slice().sort()) === JSON.stringify(queryDevices.slice().sort()), 'query found the tagged devices', found);
  check(pages === Math.ceil(queryDevices.length / 2), `query took ${Math.ceil(queryDevices.length / 2)} pages`, pages);
  step('query', { pages, found });

  // After a token renewal (new connection, no new SUBSCRIBE) twins and methods still work.
  await withTimeout(renewed.atLeast(1), valid + stepTimeout, 'a SAS token renewal');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = desiredCount.count;
  await withTimeout(registry.updateTwin(deviceId, { properties: { desired: { interval: 7 } } }, '*'), stepTimeout, 'updateTwin after renewal');
  await withTimeout(desiredCount.atLeast(before + 1), stepTimeout, 'desired update after the renewal');
  check(desired[desired.length - 1].interval === 7, 'device got interval 7 after the renewal', desired[desired.length - 1]);
  r = await withTimeout(service.invokeDeviceMethod(deviceId, { methodName: 'echo', payload: 'after', responseTimeoutInSeconds: 10 }), stepTimeout, 'invokeDeviceMethod after renewal');
  check(r.result.status === 200 && r.result.payload.echo === 'after', 'echo after the renewal', r.result);
  step('after-renewal', { renewals: renewed.count });

  await withTimeout(client.close(), stepTimeout, 'close()');
  out({ event: 'done' });
  process.stdout.write('', () => process.exit(0));
}

process.on('unhandledRejection', (e) => fail(`unhandled rejection: ${errText(e)}`));
process.on('uncaughtException', (e) => fail(`uncaught exception: ${errText(e)}\n${e && e.stack}`));
main().catch((e) => fail(errText(e)));
