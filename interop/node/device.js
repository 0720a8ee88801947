#!/usr/bin/env node
// Drives the OFFICIAL Azure IoT device SDK (azure-iot-device + azure-iot-device-mqtt)
// against a Tether hub, unmodified: connect from a device connection string over MQTT
// (TLS) or MQTT over WebSockets, send telemetry with properties, receive C2D, survive
// SAS token renewals, send again afterwards, close.
//
// Protocol with the driver (interop_test.go): line-delimited JSON on stdout, one object
// per line with an "event" field:
//   {"event":"connected"}                       open() resolved
//   {"event":"sent","n":1,...}                  sendEvent resolved (PUBACK received)
//   {"event":"ready","phase":1}                 C2D listener registered and telemetry 1
//                                               acknowledged: send the first C2D now
//   {"event":"c2d","n":1,"data":...,...}        a C2D message arrived (it is completed)
//   {"event":"renewed","n":1,"expiry":...}      the auth provider emitted newTokenAvailable
//   {"event":"ready","phase":2}                 after a renewal, telemetry 2 was
//                                               acknowledged: send the second C2D now
//   {"event":"closed"}                          close() resolved; exit code 0 follows
//   {"event":"error","message":...}             then a non-zero exit
// Diagnostics go to stderr.
//
// Environment:
//   CONNECTION_STRING   HostName=localhost;DeviceId=...;SharedAccessKey=...   (required)
//   TRANSPORT           mqtt | mqttws                                        (default mqtt)
//   PORT                mqtt: the hub's TLS MQTT port; mqttws: its HTTPS port (required)
//   CA_FILE             PEM file of the CA that signed the hub's certificate (required)
//   CONNECT_HOST        address actually dialled for mqttws (default 127.0.0.1)
//   TOKEN_VALID_SECS    token validity (default 12)
//   TOKEN_MARGIN_SECS   renewal margin (default 6): renewal every VALID-MARGIN seconds
//   RENEWALS            renewals to wait for before telemetry 2 (default 1)
//   C2D_COUNT           C2D messages expected: 1 = only before the renewal, 2 = also one
//                       after it (proves the session kept the subscription) (default 2)
//   STEP_TIMEOUT_SECS   bound on each wait (default 30)
//   TOTAL_TIMEOUT_SECS  bound on the whole run (default 90)
'use strict';

const fs = require('fs');
const { Client, Message } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');

const { out, log, fail, envInt, errText, withTimeout, Counter, portAgent, parseConnectionString } = require('./lib');
require('./lib').setName('device.js');

async function main() {
  const connStr = process.env.CONNECTION_STRING;
  const transport = (process.env.TRANSPORT || 'mqtt').toLowerCase();
  const port = envInt('PORT', 0);
  const caFile = process.env.CA_FILE;
  const connectHost = process.env.CONNECT_HOST || '127.0.0.1';
  const valid = envInt('TOKEN_VALID_SECS', 12);
  const margin = envInt('TOKEN_MARGIN_SECS', 6);
  const renewals = envInt('RENEWALS', 1);
  const c2dCount = envInt('C2D_COUNT', 2);
  const stepTimeout = envInt('STEP_TIMEOUT_SECS', 30);
  const totalTimeout = envInt('TOTAL_TIMEOUT_SECS', 90);

  setTimeout(() => fail(`whole run exceeded TOTAL_TIMEOUT_SECS=${totalTimeout}`, 3), totalTimeout * 1000).unref();

  if (!connStr) return fail('CONNECTION_STRING is required', 2);
  if (!port) return fail('PORT is required', 2);
  if (!caFile) return fail('CA_FILE is required', 2);
  if (transport !== 'mqtt' && transport !== 'mqttws') return fail(`TRANSPORT must be mqtt or mqttws, not ${transport}`, 2);
  if (!(valid > margin && margin > 0)) return fail('need TOKEN_VALID_SECS > TOKEN_MARGIN_SECS > 0', 2);
  let ca;
  try {
    ca = fs.readFileSync(caFile, 'utf8');
  } catch (e) {
    return fail(`cannot read CA_FILE ${caFile}: ${e.message}`, 2);
  }

  const fields = parseConnectionString(connStr);
  const deviceId = fields.DeviceId;
  if (!fields.HostName || !deviceId || !fields.SharedAccessKey) {
    return fail('CONNECTION_STRING needs HostName, DeviceId and SharedAccessKey', 2);
  }

  const options = {
    ca: caFile, // the SDK reads a path, or takes PEM text when the read fails
    tokenRenewal: { tokenValidTimeInSeconds: valid, tokenRenewalMarginInSeconds: margin },
  };
  let cs = connStr;
  let Transport;
  if (transport === 'mqtt') {
    // mqtt.js parses the gateway host as a URL: the port goes there, HostName stays clean
    // (wire doc §1).
    if (fields.GatewayHostName === undefined) {
      cs = connStr.replace(/;+$/, '') + `;GatewayHostName=${fields.HostName}:${port}`;
    }
    Transport = Mqtt;
  } else {
    // MqttWs always dials wss://<host>:443/$iothub/websocket; the documented knob is
    // mqtt.webSocketAgent. This agent keeps the TLS server name (from the URL host) and
    // dials the hub's HTTPS port instead.
    log(`ws agent: dialling ${connectHost}:${port}`);
    options.mqtt = { webSocketAgent: portAgent(connectHost, port, fields.HostName && fields.HostName.split(':')[0], ca, false) };
    Transport = MqttWs;
  }

  log(`transport=${transport} port=${port} device=${deviceId} token valid=${valid}s margin=${margin}s`);
  const client = Client.fromConnectionString(cs, Transport);

  // The auth provider Client.fromConnectionString created. Its newTokenAvailable event
  // is public; reaching the provider is not (pinned SDK versions, see package.json).
  const provider = client._transport && client._transport._authenticationProvider;
  if (!provider || typeof provider.on !== 'function') {
    return fail('cannot reach the SAS authentication provider (SDK internals changed?)');
  }
  const renewed = new Counter();
  provider.on('newTokenAvailable', (creds) => {
    const m = /se=(\d+)/.exec((creds && creds.sharedAccessSignature) || '');
    renewed.inc();
    out({ event: 'renewed', n: renewed.count, expiry: m ? Number(m[1]) : null });
  });

  client.on('error', (err) => {
    log('client error:', errText(err));
    out({ event: 'client-error', message: errText(err) });
  });
  client.on('disconnect', (err) => {
    log('client disconnect:', errText(err));
    out({ event: 'disconnect', message: err ? errText(err) : null });
  });

  await withTimeout(client.setOptions(options), stepTimeout, 'setOptions');
  log('options set');

  try {
    await withTimeout(client.open(), stepTimeout, 'open()');
  } catch (e) {
    return fail(`open() failed: ${errText(e)}`);
  }
  out({ event: 'connected', transport, deviceId });

  // C2D: registering the listener makes the SDK subscribe to devices/{id}/messages/devicebound/#
  // (the SUBSCRIBE is written synchronously, before the PUBLISH below on the same connection).
  const c2d = new Counter();
  client.on('message', (msg) => {
    const props = {};
    if (msg.properties && msg.properties.propertyList) {
      for (const p of msg.properties.propertyList) props[p.key] = p.value;
    }
    const data = msg.data === undefined || msg.data === null ? null : Buffer.from(msg.data).toString('utf8');
    c2d.inc();
    out({
      event: 'c2d',
      n: c2d.count,
      data,
      messageId: msg.messageId || null,
      correlationId: msg.correlationId || null,
      contentType: msg.contentType || null,
      contentEncoding: msg.contentEncoding || null,
      properties: props,
    });
    client.complete(msg).catch((err) => log('complete failed:', errText(err)));
  });

  let sentN = 0;
  async function send(afterRenewal) {
    const n = ++sentN;
    const body = { n, temperature: 20 + n, deviceId, afterRenewal };
    const msg = new Message(JSON.stringify(body));
    msg.messageId = `mid-${n}-${process.pid}`;
    msg.correlationId = `cid ${n}`;
    msg.contentType = 'application/json';
    msg.contentEncoding = 'utf-8';
    const app = { 'k y': 'v/1=2', alert: 'hot&cold', unicode: 'é', n: String(n) };
    for (const [k, v] of Object.entries(app)) msg.properties.add(k, v);
    try {
      await withTimeout(client.sendEvent(msg), stepTimeout, `sendEvent #${n} (PUBACK)`);
    } catch (e) {
      throw new Error(`sendEvent #${n} failed: ${errText(e)}`);
    }
    out({
      event: 'sent',
      n,
      afterRenewal,
      renewals: renewed.count,
      data: JSON.stringify(body),
      messageId: msg.messageId,
      correlationId: msg.correlationId,
      contentType: msg.contentType,
      contentEncoding: msg.contentEncoding,
      properties: app,
    });
  }

  await send(false);
  out({ event: 'ready', phase: 1 });

  await withTimeout(c2d.atLeast(1), stepTimeout, 'C2D message 1');
  await withTimeout(renewed.atLeast(renewals), Math.max(stepTimeout, (valid - margin) * renewals + 10), `${renewals} token renewal(s)`);
  // sendEvent issued while the renewal reconnect is still in progress is held by the
  // transport until it is connected again; its PUBACK proves the new connection works.
  await send(true);
  if (c2dCount >= 2) {
    out({ event: 'ready', phase: 2 });
    await withTimeout(c2d.atLeast(2), stepTimeout, 'C2D message 2 (after the renewal: the session must keep the subscription)');
  }

  await withTimeout(client.close(), stepTimeout, 'close()');
  out({ event: 'closed', renewals: renewed.count, c2d: c2d.count, sent: sentN });
  process.stdout.write('', () => process.exit(0));
}

process.on('unhandledRejection', (e) => fail(`unhandled rejection: ${errText(e)}`));
process.on('uncaughtException', (e) => fail(`uncaught exception: ${errText(e)}\n${e && e.stack}`));
main().catch((e) => fail(errText(e)));
