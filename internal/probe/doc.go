// Package probe is the device side of troubleshooting: it walks the path a
// device takes to its hub, from where the device is, and says at each step
// what it found and what to do. `tether probe` prints its Report.
//
// The steps, numbered as the report and the exit status number them:
//
//  1. dns        the host name's addresses (skipped for an IP literal)
//  2. tcp        a TCP connection to the MQTT port (8883) and to the HTTPS
//     port (443; through the HTTP CONNECT proxy when one is given):
//     connected, refused, or silently dropped
//  3. tls        the handshake on each port, verified the way a device
//     verifies it: chain against --ca (else the system store), dates by
//     this machine's clock, host name; an issuer that is not the hub's
//     CA points at a TLS-intercepting middlebox
//  4. clock      this machine's clock against the hub's (the HTTPS Date
//     header, bounded by the request's round trip; the certificate's
//     validity window as a cross-check): SAS tokens break past minutes
//  5. mqtt       MQTT 3.1.1 over TLS as the SDKs speak it: CONNECT with a
//     short-lived SAS token, the CONNACK explained in IoT Hub's words,
//     SUBSCRIBE, an opt-in telemetry PUBLISH, DISCONNECT
//  6. websocket  the same over WebSockets on the HTTPS port
//     (/$iothub/websocket), through the proxy when one is given: the
//     fallback for networks that block 8883
//  7. keepalive  opt-in: one connection held idle for a given time, to find
//     a NAT or firewall that drops idle flows, and the keep-alive to use
//
// A step runs when the steps it needs passed (TLS on a port needs TCP on
// that port; MQTT needs TLS on its port); the others are reported
// skipped. So one run can find a blocked 8883 and a working 443. The
// clock step needs only TCP to 443: a wrong clock is a common reason for
// a certificate that does not verify.
//
// The probe connects as the device: the hub records its connections like
// any other, with DeviceClientType "tether-probe/<version>" (ClientTypePrefix)
// as the Connections log's sdkVersion, and, because a hub keeps one
// connection per device, it replaces the device's own connection while it
// runs. It uses clean session 0 as the SDKs do and never acknowledges a
// cloud-to-device message, so the device's session and queue stay as they
// were. Everything it does is public MQTT/HTTPS behaviour, so it works
// against Azure IoT Hub as well as Tether; only Tether answers the MQTT 5
// follow-up that tells a bad key from an unknown or disabled device.
//
// Time: Config.Now is the device's clock (tokens, certificate dates, the
// skew); durations are measured with the monotonic clock.
package probe
