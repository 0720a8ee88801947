// Package presence knows which connection is each device's current one and
// turns every change into exactly one ConnectionEvent with a sequence number.
//
// Ordering: the broker's session table ends a device's previous session
// (its Disconnect has returned) before the new session calls Connect, so
// events of one device arrive here in order. Should a Connect still find a
// current session (a caller without that guarantee), the tracker emits that
// session's takeover disconnect (400027) itself, before the new connect,
// and ignores the old session's late Disconnect. Events of one device are
// handed to the Sink under that device's shard lock, so the sink sees them
// in sequence order.
//
// Backpressure: the Sink must not block for long (the app's sink appends to
// a bounded in-memory queue drained by the journal publisher; when that
// queue is full the connection goroutine waits, which slows connects rather
// than losing events).
package presence
