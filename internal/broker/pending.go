package broker

import (
	"net"
	"time"
)

// Unread input on a connection that a reconnect is about to take over.
//
// A device renewing its SAS token sends DISCONNECT, closes the socket and
// connects again at once. On a busy hub the new CONNECT can be handled
// before the old connection's goroutine has read that DISCONNECT: it is
// still in the socket, or read and not yet acted on. Taking the old
// session over then records a 400027 takeover instead of the client's
// disconnect, and hides the renewal from the renewal filter. So before a
// takeover, a connection with input pending gets up to overtakeGrace to
// act on it; an idle one (its goroutine parked in Read, nothing in the
// socket) is taken over at once, as IoT Hub does.
const overtakeGrace = 100 * time.Millisecond

// inputPending: the connection's reader is not parked in Read (it holds
// input it has not acted on yet), or its socket has unread bytes or the
// peer's FIN.
func (c *trackedConn) inputPending() bool {
	if !c.reading.Load() {
		return true
	}
	return c.sock != nil && socketReadable(c.sock)
}

// awaitInput waits while c has input pending, up to overtakeGrace, and
// reports whether the connection closed meanwhile (its own cause then
// ends the session).
func (c *trackedConn) awaitInput() bool {
	pollFor(overtakeGrace, func() bool { return c.closed.Load() || !c.inputPending() })
	return c.closed.Load()
}

// pollFor checks cond every millisecond for at most d and reports whether
// it held. The states waited for here are other goroutines' progress
// through mochi, which offers nothing to wait on.
func pollFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// socketOf finds the TCP socket under a TLS or WebSocket connection.
func socketOf(c net.Conn) net.Conn {
	for c != nil {
		if _, ok := c.(*net.TCPConn); ok {
			return c
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}
