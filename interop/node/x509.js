#!/usr/bin/env node
// X.509 with the OFFICIAL Azure IoT Node SDKs against a Tether hub.
//
// MODE=service: the service SDK (azure-iothub Registry) creates a self-signed device
// (only x509Thumbprint given: the SDK itself adds type "selfSigned") and a CA-signed one
// (type "certificateAuthority"), reads them back and checks their authentication.
//   Events: {"event":"created","deviceId":...,"authType":...,"primaryThumbprint":...} each,
//   then {"event":"done"}.
//
// MODE=device: the device SDK (azure-iot-device + azure-iot-device-mqtt) connects with a
// connection string HostName=...;DeviceId=...;x509=true and the SDK's cert/key options,
// over MQTT or MQTT over WebSockets, sends one telemetry message and closes.
//   Events: {"event":"connected"}, {"event":"sent"}, {"event":"closed"}.
//   With EXPECT_REFUSED=1 open() must fail: {"event":"refused","message":...}, exit 0.
//
// Output is line-delimited JSON on stdout; {"event":"error","message":...} and a non-zero
// exit on any failure. Diagnostics on stderr.
//
// Environment:
//   MODE                service | device                                   (required)
//   CONNECTION_STRING   service: the owner's; device: HostName=localhost;DeviceId=...;x509=true
//   PORT                service and mqttws: the hub's HTTPS port; mqtt: its MQTT/TLS port
//   CA_FILE             PEM of the CA that signed the hub's certificate     (required)
//   CONNECT_HOST        address actually dialled (default 127.0.0.1)
//   SS_DEVICE, SS_THUMBPRINT, CA_DEVICE    service: the devices to create
//   CERT_FILE, KEY_FILE device: the device's certificate and private key (PEM)
//   TRANSPORT           mqtt | mqttws (default mqtt)
//   EXPECT_REFUSED      1 = the hub must refuse the connection
//   STEP_TIMEOUT_SECS   bound on each step (default 20)
'use strict';

const fs = require('fs');
const https = require('https');
const { Registry } = require('azure-iothub');
const { Client, Message } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');

const { out, log, fail, envInt, errText, withTimeout, parseConnectionString, pointRestClient } = require('./lib');
require('./lib').setName('x509.js');

const stepTimeout = envInt('STEP_TIMEOUT_SECS', 20);
const connectHost = process.env.CONNECT_HOST || '127.0.0.1';
const port = envInt('PORT', 0);

function readFile(name) {
  const path = process.env[name];
  if (!path) throw new Error(`${name} is required`);
  return fs.readFileSync(path, 'utf8');
}

async function service(ca) {
  const cs = process.env.CONNECTION_STRING;
  const registry = Registry.fromConnectionString(cs);
  pointRestClient(registry, connectHost, port, parseConnectionString(cs).HostName, ca);
  const ss = process.env.SS_DEVICE;
  const caDev = process.env.CA_DEVICE;
  const thumb = process.env.SS_THUMBPRINT;
  if (!ss || !caDev || !thumb) throw new Error('SS_DEVICE, SS_THUMBPRINT and CA_DEVICE are required');
  const wanted = [
    { id: ss, info: { deviceId: ss, status: 'enabled', authentication: { x509Thumbprint: { primaryThumbprint: thumb } } }, type: 'selfSigned' },
    { id: caDev, info: { deviceId: caDev, status: 'enabled', authentication: { type: 'certificateAuthority' } }, type: 'certificateAuthority' },
  ];
  for (const w of wanted) {
    const created = (await withTimeout(registry.create(w.info), stepTimeout, `create ${w.id}`)).responseBody;
    const got = (await withTimeout(registry.get(w.id), stepTimeout, `get ${w.id}`)).responseBody;
    const a = got.authentication || {};
    if (a.type !== w.type || (created.authentication || {}).type !== w.type) {
      throw new Error(`${w.id}: authentication.type ${a.type} (create answered ${(created.authentication || {}).type}), want ${w.type}`);
    }
    const t = a.x509Thumbprint || {};
    if (w.type === 'selfSigned' && (t.primaryThumbprint || '').toUpperCase() !== thumb.replace(/:/g, '').toUpperCase()) {
      throw new Error(`${w.id}: primaryThumbprint ${t.primaryThumbprint}, want ${thumb}`);
    }
    out({ event: 'created', deviceId: w.id, authType: a.type, primaryThumbprint: t.primaryThumbprint || null });
  }
  out({ event: 'done' });
}

async function device(ca) {
  const cs = process.env.CONNECTION_STRING;
  const transport = (process.env.TRANSPORT || 'mqtt').toLowerCase();
  const fields = parseConnectionString(cs);
  if (fields.x509 !== 'true') throw new Error('CONNECTION_STRING needs x509=true');
  const cert = readFile('CERT_FILE');
  const key = readFile('KEY_FILE');
  const options = { cert, key, ca };
  let Transport = Mqtt;
  if (transport === 'mqttws') {
    // MqttWs dials wss://<host>:443/$iothub/websocket through this agent, which carries
    // the client certificate in its TLS handshake.
    class CertAgent extends https.Agent {
      createConnection(opts, cb) {
        return super.createConnection(Object.assign({}, opts, { host: connectHost, port, servername: fields.HostName }), cb);
      }
    }
    options.mqtt = { webSocketAgent: new CertAgent({ ca, cert, key }) };
    Transport = MqttWs;
  }
  const client = Client.fromConnectionString(cs, Transport);
  if (transport === 'mqtt') {
    // The SDK dials mqtts://<HostName>:8883. An x509 connection string's provider does
    // not take GatewayHostName, so the test's port goes into its credentials (a private
    // field, pinned SDK version) as the gateway host; HostName, and with it the MQTT
    // username, stays as the hub expects.
    const provider = client._transport && client._transport._authenticationProvider;
    if (!provider || !provider._credentials) throw new Error('cannot reach the X.509 authentication provider (SDK internals changed?)');
    provider._credentials.gatewayHostName = `${fields.HostName}:${port}`;
  }
  client.on('error', (err) => log('client error:', errText(err)));
  await withTimeout(client.setOptions(options), stepTimeout, 'setOptions');
  try {
    await withTimeout(client.open(), stepTimeout, 'open()');
  } catch (e) {
    if (process.env.EXPECT_REFUSED === '1') {
      out({ event: 'refused', message: errText(e) });
      return;
    }
    throw new Error(`open() failed: ${errText(e)}`);
  }
  if (process.env.EXPECT_REFUSED === '1') {
    await client.close().catch(() => {});
    throw new Error('the hub accepted a connection it should have refused');
  }
  out({ event: 'connected', transport, deviceId: fields.DeviceId });
  const msg = new Message(JSON.stringify({ deviceId: fields.DeviceId, x509: true }));
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  await withTimeout(client.sendEvent(msg), stepTimeout, 'sendEvent (PUBACK)');
  out({ event: 'sent' });
  await withTimeout(client.close(), stepTimeout, 'close()');
  out({ event: 'closed' });
}

async function main() {
  setTimeout(() => fail('the run took too long', 3), 4 * stepTimeout * 1000).unref();
  if (!port) return fail('PORT is required', 2);
  let ca;
  try {
    ca = readFile('CA_FILE');
  } catch (e) {
    return fail(e.message, 2);
  }
  switch (process.env.MODE) {
    case 'service':
      return service(ca);
    case 'device':
      return device(ca);
  }
  return fail('MODE must be service or device', 2);
}

main().then(
  () => process.stdout.write('', () => process.exit(0)),
  (e) => fail(errText(e))
);
