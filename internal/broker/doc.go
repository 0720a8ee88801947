// Package broker is Tether's device session layer: MQTT 3.1.1 and 5 over
// TLS, plain TCP and WebSockets, built for IoT Hub's fixed topic model
// rather than general pub/sub. A device never receives another device's
// messages; D2C goes to the journal, C2D comes from the hub.
//
// What it guarantees, and where:
//   - One live session per device, by construction (table.go): a new
//     connection ends the one it replaces, waits until that end is
//     recorded, and gets its CONNACK only after its own connect is stored.
//   - Every end has a typed cause decided where it happens (cause.go); a
//     session the hub ends first reads what the device already sent
//     (wakeconn.go), so a renewal's DISCONNECT is never recorded as a
//     takeover.
//   - QoS 1 telemetry is acknowledged after the journal stored it (d2c.go).
//   - One goroutine per connection once established, started after the
//     TLS handshake and authentication so its stack stays small; no
//     per-connection writer, no buffer held while idle (packetio.go).
//
// session.go reads top to bottom as a connection's life. The packet codec
// is mochi-mqtt's packets package (docs/ARCHITECTURE.md says why).
package broker
