// Package broker is Tether's MQTT endpoint: mochi-mqtt wrapped so that it
// behaves like IoT Hub for devices (SAS auth, one connection per device,
// per-device topics) and reports every session change to presence.
//
// Workarounds around mochi v2.7.9 (reference/deps.md §1), each tested:
//   - "connected" comes from OnSessionEstablished, never OnConnect (which
//     runs before authentication).
//   - Simultaneous CONNECTs with one client id can leave duplicate live
//     sessions in mochi; a per-device lock is held from OnConnect until the
//     session is established, refused or gone (locks.go).
//   - Disconnect causes are read from cl.StopCause(), not IsTakenOver().
//   - mochi sets no deadline before CONNECT; our listeners do (connect
//     timeout), so a silent or half-open TLS client cannot hold a socket.
//   - MaximumClientWritesPending is small (the default costs 64 KiB/client).
//
// Hooks run on each client's goroutine: they decide (authenticate, ACL) and
// hand off (presence sink, telemetry sink); nothing slow runs there.
package broker
