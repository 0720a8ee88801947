// Package sim is a fleet simulator for rehearsing an IoT hub at scale and
// for proving Tether's numbers: N devices that connect over MQTT/TLS or
// MQTT over WebSockets at a ramp rate, send telemetry, renew SAS tokens
// and retry the way the official SDKs do (profiles: c, csharp, java, node,
// python), suffer injected faults, and stop after a duration with a
// report.
//
// The simulator knows what it did, so it checks what the hub reported: it
// records every expected connection event in a ledger (device, type,
// ResultType, cause, time), hosts its own Event Grid webhook receiver
// (subscribed through /api/v1/subscriptions), reads the Connections log
// (/api/v1/logs) at the end, and compares: missing, duplicated, out of
// order (by sequence number per device), wrong code, unexpected, and
// delivery latency, per event type and ResultType and per cause.
//
// What each fault does and what the hub must report for it:
//
//	drop      close the socket without DISCONNECT   DeviceDisconnected 404104 (network)
//	silence   stop sending (no PINGREQ)             DeviceDisconnected 404104 (keep-alive), after 1.5 × keep-alive
//	dup       a second client with the same id      DeviceDisconnected 400027 (takeover) for every replaced session
//	expired   a connect with an expired token       refused: deviceConnect Error 401003 (log)
//	wrongkey  a connect signed with a wrong key     refused: deviceConnect Error 401003 (log)
//	disabled  disable the device in the registry    DeviceDisconnected 401003, then refusals 401003 until re-enabled
//	storm     every connected device drops at t     DeviceDisconnected 404104 each, reconnects with backoff
//	slow      TLS handshake stretched over a delay  connected (or, past the hub's connect timeout, 500008 without a device id)
//	hub-crash kill the hub (SIGKILL) at t, restart  DeviceDisconnected 500001 (hub-restart) for every session open at t,
//	          (Env.CrashHub)                        recorded when the hub is back; devices reconnect with backoff
//	          in a cluster: the last node           DeviceDisconnected 404104 (node-lost) for every session open on it at t,
//	                                                recorded by a surviving node (500001 if the node is back first)
//	rolling-  from t, stop (SIGTERM) and start      DeviceDisconnected with no error code (server-shutdown) for every session
//	restart   each cluster node in turn             open on a node when its stop began; devices whose node refuses the TCP
//	          (Env.RestartNode)                     connection go on to the next node
//
// Why 500001 for a crash: the hub, back up, finds in its journal the
// sessions it died with and closes them itself. It knows why they ended —
// it failed, not the device or the network — and IoT Hub's code for a
// failure on the hub's side that the device should retry is 500001
// ServerError; 404104 (closed remotely, cause unknown to the hub) would
// hide that. Disconnects a device made in the 2 s before the kill may be
// reported either way (the hub journals them asynchronously), and a
// connect in flight at the kill may or may not have been stored: the
// comparator accepts both (Expect.Alt, Expect.Maybe).
//
// Faults take a count ("dup=10"), a fraction of the fleet once ("drop=5%")
// or a rate per minute ("drop=2%/min", per device a Poisson process); dup,
// silence and slow are properties of the devices they pick, so they take a
// count or a fraction only. At the end the fleet disconnects at the ramp
// rate, as it came.
// "expired" and "wrongkey" are extra attempts by a second copy of the
// device (its session is not disturbed); the others act on the device.
//
// Twins and direct methods (twin.go, driver.go, twincheck.go): the
// devices use them as an app on their profile's SDK does — method and twin
// subscriptions made lazily per feature, a GET and a reported patch at
// start-up, reported patches every interval, desired pushes applied, the
// "echo" method answered after a delay — and after a reconnect subscribe
// and GET again or not, as that SDK does. The simulator's service side
// calls methods and updates desired properties over the REST API. Devices
// record when they were online and when the hub had their subscriptions
// in effect (spans); at the end every call's outcome is checked against
// what those spans make certain (200, 404103, 504101, or any of them
// across a connection change), every desired update against the pushes,
// and every device request against its answer, and a payload reaching the
// wrong device or request fails the run.
//
// Scale: device i dials from 127.0.0.(2 + i mod sources); past PerProcess
// devices the run is split over worker processes (the caller supplies
// Spawn, e.g. a re-exec of the tether binary); their ledgers are merged
// before the comparison. Each device draws from its own seeded random
// source, so a run is reproducible up to timing.
package sim
