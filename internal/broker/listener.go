package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// trackedConn is every net.Conn we hand to mochi. The hook marks it seen
// when mochi reaches OnConnect, so the listener knows which failures
// happened before any hook could record them; it also counts bytes read so
// a bare port probe (connect, close, nothing sent) is not logged.
type trackedConn struct {
	net.Conn
	seen      atomic.Bool
	bytes     atomic.Int64
	keepAlive atomic.Int64 // idle limit in ns once CONNECT is read; 0 = mochi's
	closed    atomic.Bool  // Close was called (mochi stopped the client)
	reading   atomic.Bool  // mochi's goroutine is parked in Read
	overtaken atomic.Bool  // a reconnect ended this session first (endOvertaken)
	sock      net.Conn     // the TCP socket underneath, for inputPending
	// abandon is set by the hook once it holds state for this connection;
	// finish calls it (same goroutine: mochi's establish has returned).
	abandon func(error)
}

// finish runs after mochi's establish returned with err: it records a
// failure that happened before any hook saw the client, and ends a session
// mochi left without calling OnDisconnect.
func (c *trackedConn) finish(protocol, remote string, err error, onFailure preConnectFailure) {
	if err != nil && !c.seen.Load() && (c.bytes.Load() > 0 || isTimeout(err)) && onFailure != nil {
		onFailure(protocol, remote, err)
	}
	if c.abandon != nil {
		c.abandon(err)
	}
}

// maxIdle is IoT Hub's cap on the keep-alive timeout (1767 s).
const maxIdle = 1767 * time.Second

// setKeepAlive records the CONNECT keep-alive. mochi computes the read
// deadline as keepalive + keepalive/2 in whole seconds, which makes 1 s
// into 1 s and 3 s into 4 s; IoT Hub allows exactly 1.5×, capped at
// 1767 s, so SetDeadline substitutes that.
func (c *trackedConn) setKeepAlive(seconds uint16) {
	if seconds > 0 {
		c.keepAlive.Store(int64(min(time.Duration(seconds)*1500*time.Millisecond, maxIdle)))
	}
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	if ka := c.keepAlive.Load(); ka > 0 && !t.IsZero() {
		t = time.Now().Add(time.Duration(ka))
	}
	return c.Conn.SetDeadline(t)
}

func (c *trackedConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if testHookRead != nil {
		testHookRead()
	}
	c.reading.Store(true)
	n, err := c.Conn.Read(p)
	c.reading.Store(false)
	c.bytes.Add(int64(n))
	return n, err
}

// testHookRead, set by tests only, runs as a Read starts: a delay there
// holds a connection's goroutine off the input it is about to get.
var testHookRead func()

// preConnectFailure is called when a connection ended before mochi handed
// its CONNECT to the hook.
type preConnectFailure func(protocol string, remote string, err error)

// netListener serves MQTT over TCP or TLS with a connect deadline, which
// mochi's own listeners lack.
type netListener struct {
	id, address, protocol string
	tls                   *tls.Config
	connectTimeout        time.Duration
	onFailure             preConnectFailure
	closeClients          func(listenerID string) // the broker's; mochi's if nil

	ln     net.Listener
	mu     sync.Mutex
	closed bool
	log    *slog.Logger
}

var _ listeners.Listener = (*netListener)(nil)

func (l *netListener) ID() string       { return l.id }
func (l *netListener) Protocol() string { return l.protocol }
func (l *netListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

// Init opens the socket.
func (l *netListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// Serve accepts until Close.
func (l *netListener) Serve(establish listeners.EstablishFn) {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(delay*2, 5*time.Millisecond), time.Second)
			l.log.Warn("mqtt accept failed", "listener", l.id, "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go l.handle(c, establish)
	}
}

func (l *netListener) handle(c net.Conn, establish listeners.EstablishFn) {
	// Covers the TLS handshake and the CONNECT packet; mochi replaces it
	// with the keep-alive deadline once CONNECT is read.
	_ = c.SetDeadline(time.Now().Add(l.connectTimeout))
	sock := c
	if l.tls != nil {
		raw := &trackedConn{Conn: c} // counts handshake bytes
		tlsConn := tls.Server(raw, l.tls)
		// The handshake runs on a goroutine of its own that then exits:
		// its crypto grows the stack to tens of KiB, which would otherwise
		// stay with the goroutine that goes on to read MQTT for the life of
		// the connection (idle memory per device).
		done := make(chan error, 1)
		go func() { done <- tlsConn.Handshake() }()
		if err := <-done; err != nil {
			if (raw.bytes.Load() > 0 || isTimeout(err)) && l.onFailure != nil {
				l.onFailure(l.protocol, c.RemoteAddr().String(), fmt.Errorf("TLS handshake: %w", err))
			}
			_ = c.Close()
			return
		}
		c = tlsConn
	}
	tc := &trackedConn{Conn: c, sock: sock}
	tc.finish(l.protocol, c.RemoteAddr().String(), establish(l.id, tc), l.onFailure)
	_ = c.Close()
}

// Close stops accepting and closes this listener's clients.
func (l *netListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if l.ln != nil {
		_ = l.ln.Close()
	}
	closeWith(l.closeClients, closeClients, l.id)
}

// closeWith closes a listener's clients with the broker's function, or
// mochi's where none is set.
func closeWith(own func(string), mochi listeners.CloseFn, id string) {
	if own != nil {
		own(id)
		return
	}
	mochi(id)
}

// isTimeout: a client that connected and then said nothing (half-open TLS,
// slow CONNECT) is recorded even though it sent no byte; a client that
// connected and closed without a byte (a port probe) is not.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
