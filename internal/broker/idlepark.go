package broker

// An idle session's reader parks on its socket, in a goroutine whose stack
// has not grown.
//
// A goroutine starts with a 2 KiB stack, and the runtime shrinks a grown
// stack during GC only while less than a quarter of it is in use, counting
// 800 bytes it keeps in reserve: a reader parked in a read never qualifies.
// So a reader that once went deep (decrypting a TLS record, handling a
// packet) keeps 4 or 8 KiB for the rest of the connection, and a reader
// parked inside crypto/tls (whose read path alone takes ~800 bytes of
// frames) cannot fit in 2 KiB at all. Instead, once everything the device
// sent is handled and all further input is still in the socket (nothing
// buffered in the session's reader, in crypto/tls or in its recordConn),
// the reader waits for the socket to become readable through the
// runtime's poller directly, a few hundred bytes deep; and when the
// goroutine waiting would be one that went deep, the reader goes on in a
// new goroutine and the old one exits, freeing its grown stack.
//
// The hop is taken only after a PINGREQ: an MQTT client pings when it has
// had nothing else to send for a keep-alive period, so an idle device's
// reader is moved once per ping, and a device that keeps sending never
// pays a goroutine per packet. Read deadlines (keep-alive) and wakes
// (takeover, expiry, shutdown) end the wait like a read's, and the read
// that follows reports them.

// idleWait is called by the read loop before it reads the next packet. It
// reports true when the reader went on on a new goroutine and this one
// must return without ending the session.
func (s *session) idleWait() (hopped bool) {
	if !s.parkable || s.rd.r != s.rd.w || (s.rec != nil && !(s.rd.short && s.rec.quiet())) {
		return false
	}
	if s.deep {
		if s.rd.last != pingreqHeader || !idleHop {
			return false // a busy device: read on this goroutine
		}
		s.deep = false
		go s.run()
		return true
	}
	s.rd.releaseChunk() // next would, but only after the wait
	s.wake.waitReadable()
	// Decrypting what follows grows the stack; on plain TCP a PINGREQ and
	// its PINGRESP do not (BenchmarkIdleSession), so only a handled
	// packet (over) makes the reader deep there, and an idle plain
	// session never changes goroutine: each change wakes another thread.
	s.deep = s.rec != nil
	return false
}

const pingreqHeader = 0xC0

// idleHop turns the hop off, for BenchmarkIdlePing's comparison.
var idleHop = true
