package broker

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// wakeConn is a device's TCP socket whose blocked reader another goroutine
// can wake, so that the reader finishes what has already arrived and then
// stops. It is how a session ends when the hub ends it (takeover, token
// expiry, disabled device, shutdown) without losing a cause the device
// already sent: a renewing SDK writes DISCONNECT on its old connection
// before it opens the new one, so when the new CONNECT is handled those
// bytes are in the old socket's receive buffer, unread or not yet acted
// on. The woken reader reads them (without waiting for more) and ends the
// session as the client's disconnect, not as a takeover.
//
// It sits under TLS and WebSocket framing, so the layers above see either
// the bytes that had arrived or errWoken, and never wait. The drain is
// bounded by what the socket held when it began: a device that keeps
// sending cannot keep its session alive once the hub ended it.
type wakeConn struct {
	*net.TCPConn
	mu    sync.Mutex // orders wake against SetReadDeadline
	woken atomic.Bool
	// left is what the drain may still read: -1 until the drain has
	// measured the socket's receive queue. Only the reader uses it.
	left int32
	// writeWait bounds a write the socket cannot take at once, in
	// milliseconds (0: the connection's own write deadline applies, as
	// before a session is established).
	writeWait atomic.Int32
	// nowait makes a read that finds nothing return errWouldBlock instead
	// of waiting: the idle poller reads a parked session's socket so
	// (idlepark.go). Only the reader uses it.
	nowait bool
	// oweRest makes a write keep what the socket does not take at once in
	// owed instead of waiting for room: the idle poller answers a parked
	// session's PINGREQ so. owed is sent first by the next write. Both
	// are guarded by the session's write lock, which every write holds.
	// (A TLS record is sealed once: its end cannot be dropped.)
	oweRest bool
	owed    []byte
}

// errWouldBlock is a nowait read's when the socket has nothing. It is
// temporary, so crypto/tls keeps what it has of a record and reads on
// from there next time.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "no input yet" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

// errWoken ends a woken reader's read once nothing more had arrived.
var errWoken = errors.New("connection ended by the hub")

// aLongTimeAgo is a read deadline that has passed: it wakes a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

func newWakeConn(c *net.TCPConn) *wakeConn { return &wakeConn{TCPConn: c} }

// wake makes the reader's current or next Read return what has arrived
// and then errWoken. Safe from any goroutine, more than once.
func (c *wakeConn) wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.woken.Load() {
		return
	}
	c.left = -1
	c.woken.Store(true)
	_ = c.TCPConn.SetReadDeadline(aLongTimeAgo)
}

func (c *wakeConn) Read(p []byte) (int, error) {
	if !c.woken.Load() {
		n, err := c.readNow(p)
		if err == nil || n > 0 || !c.woken.Load() {
			return n, err
		}
	}
	return c.drain(p)
}

// SetReadDeadline keeps a woken connection's deadline in the past, so a
// reader that resets its keep-alive deadline cannot sleep through a wake.
func (c *wakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.woken.Load() {
		return nil
	}
	return c.TCPConn.SetReadDeadline(t)
}

func (c *wakeConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.TCPConn.SetWriteDeadline(t)
}

// setWriteWait sets writeWait.
func (c *wakeConn) setWriteWait(d time.Duration) { c.writeWait.Store(int32(d / time.Millisecond)) }

// Write writes p with one non-blocking write when the socket's send
// buffer has room, as it has for an idle device's PINGRESP or PUBACK, so
// that no write deadline is armed: a deadline is a runtime timer that,
// left behind after the write, fires writeWait later and wakes the
// process for nothing (one wake-up per PINGRESP on an idle hub). Only
// what the socket does not take at once waits, at most writeWait.
//
// With oweRest a write takes no wait at all: what the socket does not
// take is owed, and the write reports p written. Every write pays what is
// owed first (payOwed).
func (c *wakeConn) Write(p []byte) (int, error) {
	if err := c.payOwed(); err != nil {
		return 0, err
	}
	wait := time.Duration(c.writeWait.Load()) * time.Millisecond
	if wait == 0 {
		return c.TCPConn.Write(p)
	}
	n, err := c.writeNow(p)
	if err != nil || n == len(p) {
		return n, err
	}
	if c.oweRest {
		c.owed = append([]byte(nil), p[n:]...)
		return len(p), nil
	}
	m, err := c.writeWaiting(p[n:], wait)
	return n + m, err
}

// payOwed writes what an oweRest write left owed, waiting for room at most
// writeWait.
func (c *wakeConn) payOwed() error {
	if len(c.owed) == 0 {
		return nil
	}
	b := c.owed
	c.owed = nil
	wait := max(time.Duration(c.writeWait.Load())*time.Millisecond, time.Millisecond)
	_, err := c.writeWaiting(b, wait)
	return err
}

// writeWaiting writes p, waiting for room at most wait.
func (c *wakeConn) writeWaiting(p []byte, wait time.Duration) (int, error) {
	_ = c.TCPConn.SetWriteDeadline(time.Now().Add(wait))
	n, err := c.TCPConn.Write(p)
	if err == nil {
		_ = c.TCPConn.SetWriteDeadline(time.Time{})
	}
	return n, err
}

// wakeConnOf finds the wakeConn under a TLS or WebSocket connection.
func wakeConnOf(c net.Conn) *wakeConn {
	for c != nil {
		if w, ok := c.(*wakeConn); ok {
			return w
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// WakeListener wraps ln so that its TCP connections can be woken; the hub
// wraps its HTTPS listener with it, so MQTT over WebSockets sessions end
// like the others.
func WakeListener(ln net.Listener) net.Listener { return wakeListener{ln} }

type wakeListener struct{ net.Listener }

func (l wakeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		return newWakeConn(tc), nil
	}
	return c, err
}
