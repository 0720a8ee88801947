package delivery

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/events"
)

// h1 sends webhook POSTs over HTTP/1.1 connections it keeps per endpoint,
// writing the request and reading the answer on the sending goroutine.
//
// Why not net/http's Transport: each of its round trips hands the request
// to a writer goroutine and the answer back from a reader goroutine (two
// wake-ups and channel hand-offs per POST), clones the header map, and
// parks in its connection pool's select; at one POST per event
// (maxEventsPerBatch 1, Event Grid's default) that was about half of the
// webhook's CPU beside the socket's own write and read (issue 21). Here a
// POST is one write of head and body and a read of the answer
// (readAnswer parses it), on the caller's goroutine.
//
// What the Transport did that matters here is kept: connections are kept
// alive (at most perHost idle per endpoint, 90 s), dialled through the
// endpoint policy's dialer, TLS verified as the default client does (HTTP/1.1
// only); an idle connection the endpoint closed is noticed before it is
// used (alive); a request is never sent twice. Endpoints the Transport must
// handle (a proxy from the environment, user info in the URL, a non-ASCII
// host) keep using the client (webhook.send).
type h1 struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	tls     *tls.Config // cloned per connection with its ServerName
	perHost int
	// idleTimeout closes a connection idle that long (0: h1IdleTimeout).
	idleTimeout time.Duration

	mu       sync.Mutex
	idle     map[string][]*h1Conn // by scheme://host:port
	sweeping bool                 // a sweep is scheduled
}

// h1IdleTimeout is how long an idle connection is kept (the default
// Transport's IdleConnTimeout).
const h1IdleTimeout = 90 * time.Second

// h1Conn is one kept connection.
type h1Conn struct {
	key  string
	c    net.Conn
	raw  net.Conn // the TCP connection under TLS, for alive
	br   *bufio.Reader
	wbuf []byte
	used time.Time
	// deadline: a POST's deadline is set on c (cleared by the next POST
	// that has none).
	deadline bool
}

// h1Target is an endpoint as the sender writes to it, prepared once per
// subscription.
type h1Target struct {
	key      string // pool key
	addr     string // host:port to dial
	tls      bool
	hostname string // TLS server name
	head     []byte // "POST <uri> HTTP/1.1\r\nHost: …\r\nUser-Agent: …\r\n"
}

// h1TargetOf prepares endpoint u, or says why h1 does not take it.
func h1TargetOf(raw string, proxy func(*http.Request) (*url.URL, error)) (*h1Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	var port string
	switch u.Scheme {
	case "http":
		port = "80"
	case "https":
		port = "443"
	default:
		return nil, fmt.Errorf("scheme %q", u.Scheme)
	}
	if u.User != nil || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("user info, opaque or no host")
	}
	for i := 0; i < len(u.Host); i++ {
		if c := u.Host[i]; c <= ' ' || c >= 0x7f {
			return nil, errors.New("host not plain ASCII")
		}
	}
	if proxy != nil {
		if p, err := proxy(&http.Request{Method: http.MethodPost, URL: u, Header: http.Header{}}); err != nil || p != nil {
			return nil, errors.New("proxied")
		}
	}
	host := u.Hostname()
	if u.Port() != "" {
		port = u.Port()
	}
	t := &h1Target{key: u.Scheme + "://" + net.JoinHostPort(host, port), addr: net.JoinHostPort(host, port),
		tls: u.Scheme == "https", hostname: host}
	t.head = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\n", u.RequestURI(), u.Host)
	return t, nil
}

// errBadHeader: a header the request cannot carry (a line break in it).
var errBadHeader = errors.New("invalid header field")

// post sends one POST of body with header to t and returns the answer's
// status; the answer's body (up to maxAnswer) is read and dropped. ctx
// ending aborts it (the connection is closed). by, if set, bounds the
// POST through the connection's own deadline (the dial through a context
// ending then): no timer and context of its own per POST.
func (h *h1) post(ctx context.Context, t *h1Target, header []events.HeaderField, body []byte, by time.Time) (int, error) {
	c, err := h.get(ctx, t, by)
	if err != nil {
		return 0, err
	}
	// ctx ending unblocks the write or read at once; the connection is
	// not reused then.
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(aLongTimeAgo) })
	status, reuse, err := c.roundTrip(t.head, header, body)
	if !stop() {
		// The deadline was set (or is being set): an answer read before
		// it still counts, the connection does not.
		reuse = false
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if reuse {
		h.put(c)
	} else {
		_ = c.c.Close()
	}
	return status, err
}

var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes the request (head: the target's request line, Host
// and User-Agent) and reads its answer.
func (c *h1Conn) roundTrip(head []byte, header []events.HeaderField, body []byte) (status int, reuse bool, err error) {
	b := append(c.wbuf[:0], head...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	for _, f := range header {
		if !validHeader(f.Key) || !validHeader(f.Value) {
			return 0, false, errBadHeader
		}
		b = append(b, f.Key...)
		b = append(b, ": "...)
		b = append(b, f.Value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	if len(b)+len(body) <= 64<<10 {
		b = append(b, body...)
		_, err = c.c.Write(b)
	} else {
		bufs := net.Buffers{b, body}
		_, err = bufs.WriteTo(c.c)
	}
	if cap(b) <= 64<<10 {
		c.wbuf = b[:0]
	}
	if err != nil {
		return 0, false, err
	}
	// Reused only when the answer was read whole and the endpoint keeps
	// the connection.
	return readAnswer(c.br)
}

// validHeader: no byte that would end or fold the header line.
func validHeader(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// get returns an idle connection to t that is still open, or dials one.
func (h *h1) get(ctx context.Context, t *h1Target, by time.Time) (*h1Conn, error) {
	now := time.Now()
	for {
		h.mu.Lock()
		l := h.idle[t.key]
		if len(l) == 0 {
			h.mu.Unlock()
			break
		}
		c := l[len(l)-1]
		l[len(l)-1] = nil
		h.idle[t.key] = l[:len(l)-1]
		h.mu.Unlock()
		// Anything read ahead or waiting on the socket is nothing asked
		// for: the connection is not used again.
		// The POST's deadline first: alive cannot read past an old one.
		c.setDeadline(by)
		if now.Sub(c.used) < h.idleFor() && c.br.Buffered() == 0 && alive(c.raw) {
			return c, nil
		}
		_ = c.c.Close()
	}
	if !by.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, by)
		defer cancel()
	}
	raw, err := h.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{key: t.key, c: raw, raw: raw}
	if t.tls {
		cfg := h.tls.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = t.hostname
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		c.c = tc
	}
	c.br = bufio.NewReaderSize(c.c, 4096)
	c.setDeadline(by)
	return c, nil
}

// setDeadline sets by (zero: none) as c's deadline, unless c has none and
// by is zero.
func (c *h1Conn) setDeadline(by time.Time) {
	if !by.IsZero() || c.deadline {
		_ = c.c.SetDeadline(by)
		c.deadline = !by.IsZero()
	}
}

func (h *h1) idleFor() time.Duration {
	if h.idleTimeout > 0 {
		return h.idleTimeout
	}
	return h1IdleTimeout
}

// put keeps c for the next POST to its endpoint (at most perHost).
func (h *h1) put(c *h1Conn) {
	c.used = time.Now()
	h.mu.Lock()
	if h.idle == nil {
		h.idle = map[string][]*h1Conn{}
	}
	if l := h.idle[c.key]; len(l) < h.perHost {
		h.idle[c.key] = append(l, c)
		if !h.sweeping {
			h.sweeping = true
			time.AfterFunc(h.idleFor(), h.sweep)
		}
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	_ = c.c.Close()
}

// sweep closes the connections idle for longer than the idle timeout
// (an endpoint no longer posted to keeps none open), and comes back while
// any are kept.
func (h *h1) sweep() {
	cut := time.Now().Add(-h.idleFor())
	var old []*h1Conn
	h.mu.Lock()
	for k, l := range h.idle {
		keep := l[:0]
		for _, c := range l {
			if c.used.Before(cut) {
				old = append(old, c)
			} else {
				keep = append(keep, c)
			}
		}
		clear(l[len(keep):])
		if len(keep) == 0 {
			delete(h.idle, k)
		} else {
			h.idle[k] = keep
		}
	}
	h.sweeping = len(h.idle) > 0
	if h.sweeping {
		time.AfterFunc(h.idleFor()/2, h.sweep)
	}
	h.mu.Unlock()
	for _, c := range old {
		_ = c.c.Close()
	}
}
