// Package presence knows which connection is each device's current one and
// turns every change into exactly one ConnectionEvent with a sequence number.
//
// Ordering: the broker calls Connect from mochi's OnSessionEstablished and
// Disconnect from OnDisconnect. On a takeover the new session's Connect
// usually runs before the old session's Disconnect (deps.md §1.3); the
// tracker therefore emits the takeover disconnect (400027) of the old
// session itself, before the new connect, and ignores the old session's
// late Disconnect. Events of one device are handed to the Sink under that
// device's shard lock, so the sink sees them in sequence order.
//
// Backpressure: the Sink must not block for long (the app's sink appends to
// a bounded in-memory queue drained by the journal publisher; when that
// queue is full the connection goroutine waits, which slows connects rather
// than losing events).
package presence
