// Package throttle holds the hub's limits that keep it standing through a
// reconnect storm, and the D2C message limits, as IoT Hub applies them
// (reference/iothub-facts.md §3.6–3.7): token buckets with traffic shaping
// (a caller may wait a bounded time for its token instead of being refused
// at once, so short bursts queue and long violations are refused), a gate
// on TLS handshakes in progress, and a daily message quota that resets at
// 00:00 UTC.
//
// What each limit protects, and the defaults, are in docs/sizing.md. The
// broker asks a Limiter at four points:
//
//	accept (MQTT/TLS)     Connection: hub-wide new-connection rate, per source address
//	                      Handshake:  a slot among the handshakes in progress
//	after CONNECT         Connection again for connections that had no TLS handshake to save
//	                      (plain TCP, WebSockets, whose TLS the HTTPS server did)
//	after authentication  DeviceConnect: per-device connects (an SDK in a reconnect loop)
//	each D2C message      Message: per-device and hub-wide rate, daily quota
//
// Everything is in memory and per process; the per-key buckets (addresses,
// devices) are dropped once full again (Sweep), so memory follows the
// clients that were active in the last burst/rate seconds. The clock is
// passed in; nothing here sleeps except Gate.Acquire, which waits for a slot.
package throttle
