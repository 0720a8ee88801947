package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
)

// hookServer is an endpoint that records what it got and counts the
// connections it accepted.
type hookServer struct {
	*httptest.Server
	conns   atomic.Int32
	discard bool // keep nothing (benchmarks)
	mu      sync.Mutex
	bodies  [][]byte
	heads   []http.Header
}

func newHookServer(t testing.TB, tlsOn bool, answer func(w http.ResponseWriter, r *http.Request), mod ...func(*http.Server)) *hookServer {
	s := &hookServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		if !s.discard {
			s.bodies = append(s.bodies, b)
			s.heads = append(s.heads, r.Header.Clone())
		}
		s.mu.Unlock()
		if answer != nil {
			answer(w, r)
		}
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	for _, f := range mod {
		f(s.Config)
	}
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *hookServer) got() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

// directHook is the default webhook destination (its direct sender), with
// tlsConf trusted for TLS endpoints.
func directHook(tlsConf *tls.Config) *webhook {
	w := defaultWebhook(4, nil, "")
	w.proxy = nil
	if tlsConf != nil {
		w.fast.tls = tlsConf
	}
	return w
}

// directTo is a plain endpoint, the direct sender's h1 and its target.
func directTo(t testing.TB) (*hookServer, *h1, *h1Target) {
	srv := newHookServer(t, false, nil)
	tg, err := h1TargetOf(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv, directHook(nil).fast, tg
}

func hookSub(u string) events.Subscription {
	s := events.Subscription{Name: "direct"}
	s.Destination.EndpointType = events.EndpointWebHook
	s.Destination.Properties.EndpointURL = u
	return s
}

func oneBatch(t testing.TB, sub events.Subscription) Batch {
	ce := presence.ConnectionEvent{DeviceID: "dev-1", Kind: presence.Disconnected, Reason: presence.ReasonClient,
		Time: t0, Sequence: strings.Repeat("0", 63) + "1"}
	ev, ok := events.FromConnection(events.Resource{}, ce, events.Marks{})
	if !ok {
		t.Fatal("no event")
	}
	return Batch{Sub: sub, Events: []events.Event{ev}, Attempt: 1}
}

func openDirect(t testing.TB, w *webhook, sub events.Subscription, timeout time.Duration) Sender {
	s := w.Open(sub, SendEnv{Clock: SystemClock(), Timeout: timeout})
	if _, ok := s.(*directSender); !ok {
		t.Fatalf("%s: sent through net/http, want the direct sender", sub.Destination.Properties.EndpointURL)
	}
	return s
}

// The direct sender POSTs what net/http would (body, aeg-* headers,
// Content-Length, Host) and keeps one connection for sequential POSTs.
func TestDirectSenderKeepsTheConnection(t *testing.T) {
	srv := newHookServer(t, false, nil)
	sub := hookSub(srv.URL + "/hook?code=abc")
	s := openDirect(t, directHook(nil), sub, 5*time.Second)
	b := oneBatch(t, sub)
	want, err := events.NewDelivery(sub, b.Events, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if res := s.Send(context.Background(), b); !res.OK || res.Status != 200 {
			t.Fatalf("send %d: %+v", i, res)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections for 20 sequential POSTs, want 1", n)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if !bytes.Equal(srv.bodies[0], want.Body) {
		t.Errorf("body %s, want %s", srv.bodies[0], want.Body)
	}
	for k := range want.Header {
		if got := srv.heads[0].Get(k); got != want.Header.Get(k) {
			t.Errorf("header %s: %q, want %q", k, got, want.Header.Get(k))
		}
	}
}

// Answers that end the connection, or that cannot be reused, are read
// whole and the next POST opens a new connection; an endpoint that closed
// an idle connection is noticed before it is used.
func TestDirectSenderConnectionEnds(t *testing.T) {
	var n atomic.Int32
	srv := newHookServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Connection", "close")
		case 2:
			w.Write(bytes.Repeat([]byte("x"), maxAnswer+10)) // too long to read: not reused
			return
		case 3:
			w.WriteHeader(http.StatusEarlyHints) // informational, then the answer
			w.WriteHeader(http.StatusNoContent)
			return
		case 4:
			w.(http.Flusher).Flush() // chunked
			w.Write([]byte("ok"))
			return
		}
		w.WriteHeader(http.StatusOK)
	}, func(c *http.Server) { c.IdleTimeout = 100 * time.Millisecond })
	sub := hookSub(srv.URL)
	s := openDirect(t, directHook(nil), sub, 5*time.Second)
	b := oneBatch(t, sub)
	for i := range 6 {
		if i == 5 {
			time.Sleep(400 * time.Millisecond) // the endpoint closes the idle connection
		}
		if res := s.Send(context.Background(), b); !res.OK {
			t.Fatalf("send %d: %+v", i, res)
		}
	}
	// 1: closed by the endpoint; 2: answer too long; 3 and 4 reused; the
	// 5th on that connection, the 6th after the idle close on a new one.
	if got, want := srv.conns.Load(), int32(4); got != want {
		t.Errorf("%d connections, want %d", got, want)
	}
	if srv.got() != 6 {
		t.Errorf("endpoint got %d POSTs, want 6 (none twice)", srv.got())
	}
}

// A connection idle past the idle timeout is closed even when nothing
// more is posted to its endpoint.
func TestDirectSenderClosesIdleConnections(t *testing.T) {
	closed := make(chan struct{}, 1)
	srv := newHookServer(t, false, nil, func(c *http.Server) {
		c.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateClosed {
				closed <- struct{}{}
			}
		}
	})
	sub := hookSub(srv.URL)
	w := directHook(nil)
	w.fast.idleTimeout = 200 * time.Millisecond
	if res := openDirect(t, w, sub, 5*time.Second).Send(context.Background(), oneBatch(t, sub)); !res.OK {
		t.Fatal(res)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle connection is still open after 5 s (idle timeout 200 ms)")
	}
	w.fast.mu.Lock()
	defer w.fast.mu.Unlock()
	if len(w.fast.idle) != 0 || w.fast.sweeping {
		t.Errorf("pool %v, sweeping %v after the sweep", w.fast.idle, w.fast.sweeping)
	}
}

// Status codes are mapped as for net/http; no answer in time is TimedOut;
// a refused connection is a NetworkError.
func TestDirectSenderOutcomes(t *testing.T) {
	release := make(chan struct{})
	srv := newHookServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/404":
			w.WriteHeader(http.StatusNotFound)
		case "/503":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/slow":
			<-release
		}
	})
	defer close(release)
	w := directHook(nil)
	for _, c := range []struct {
		path    string
		ok      bool
		final   bool
		outcome string
	}{
		{"/404", false, true, "NotFound"},
		{"/503", false, false, "Busy"},
		{"/slow", false, false, OutcomeTimedOut},
	} {
		sub := hookSub(srv.URL + c.path)
		res := openDirect(t, w, sub, 300*time.Millisecond).Send(context.Background(), oneBatch(t, sub))
		if res.OK != c.ok || res.Final != c.final || res.Outcome != c.outcome {
			t.Errorf("%s: %+v, want ok %v final %v outcome %s", c.path, res, c.ok, c.final, c.outcome)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	sub := hookSub("http://" + addr + "/gone")
	if res := openDirect(t, w, sub, time.Second).Send(context.Background(), oneBatch(t, sub)); res.OK || res.Outcome != OutcomeNetworkError {
		t.Errorf("refused: %+v, want a NetworkError", res)
	}
}

// A TLS endpoint is verified and spoken to over HTTP/1.1; one it cannot
// verify is a network error.
func TestDirectSenderTLS(t *testing.T) {
	srv := newHookServer(t, true, nil)
	sub := hookSub(srv.URL)
	trusted := srv.Client().Transport.(*http.Transport).TLSClientConfig
	s := openDirect(t, directHook(trusted), sub, 5*time.Second)
	for i := range 3 {
		if res := s.Send(context.Background(), oneBatch(t, sub)); !res.OK {
			t.Fatalf("send %d: %+v", i, res)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d TLS connections, want 1", n)
	}
	untrusted := openDirect(t, directHook(nil), sub, 5*time.Second)
	if res := untrusted.Send(context.Background(), oneBatch(t, sub)); res.OK || res.Outcome != OutcomeNetworkError {
		t.Errorf("unverified certificate: %+v, want a NetworkError", res)
	}
}

// A header that would break the request is refused, not sent.
func TestDirectSenderRefusesBrokenHeaders(t *testing.T) {
	srv, h, tg := directTo(t)
	_, err := h.post(context.Background(), tg, []events.HeaderField{{Key: "Aeg-Subscription-Name", Value: "A\r\nX-Injected: 1"}}, []byte("[]"), time.Time{})
	if err != errBadHeader {
		t.Errorf("err %v, want errBadHeader", err)
	}
	if srv.got() != 0 {
		t.Errorf("the endpoint got %d requests", srv.got())
	}
}

// Endpoints net/http must handle stay with it.
func TestDirectSenderLeavesTheRestToNetHTTP(t *testing.T) {
	proxy := func(*http.Request) (*url.URL, error) { return url.Parse("http://proxy.example:3128") }
	for _, c := range []struct {
		u     string
		proxy func(*http.Request) (*url.URL, error)
	}{
		{"http://user:pw@127.0.0.1:1/x", nil},
		{"ftp://127.0.0.1/x", nil},
		{"https://bücher.example/x", nil},
		{"https://hook.example/x", proxy},
	} {
		if _, err := h1TargetOf(c.u, c.proxy); err == nil {
			t.Errorf("%s: taken by the direct sender", c.u)
		}
	}
	if tg, err := h1TargetOf("https://hook.example/api/x?code=1", nil); err != nil || tg.addr != "hook.example:443" ||
		!strings.HasPrefix(string(tg.head), "POST /api/x?code=1 HTTP/1.1\r\nHost: hook.example\r\n") {
		t.Errorf("target %+v, %v", tg, err)
	}
}

// BenchmarkWebhookSend is one POST of one connection event to an endpoint
// in this process, through net/http's client and through the direct
// sender; cpu-µs/op is the process's CPU time (getrusage), the endpoint's
// share included in both, so it holds on a busy machine where ns/op does
// not:
//
//	go test -run '^$' -bench WebhookSend -benchmem ./internal/events/delivery/
func BenchmarkWebhookSend(b *testing.B) {
	srv := newHookServer(b, false, nil)
	srv.mu.Lock()
	srv.discard = true
	srv.mu.Unlock()
	sub := hookSub(srv.URL)
	batch := oneBatch(b, sub)
	for _, c := range []struct {
		name string
		open func(w *webhook) Sender
	}{
		{"net-http", func(w *webhook) Sender {
			return stateless{env: SendEnv{Clock: SystemClock(), Timeout: 5 * time.Second}, send: w.send}
		}},
		{"direct", func(w *webhook) Sender { return openDirect(b, w, sub, 5*time.Second) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := c.open(directHook(nil))
			b.ReportAllocs()
			c0 := processCPU()
			for b.Loop() {
				if res := s.Send(context.Background(), batch); !res.OK {
					b.Fatal(res)
				}
			}
			b.ReportMetric(float64((processCPU()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// The direct sender dials through the endpoint policy, as the client
// does: a refused address is a network error and is never reached.
func TestDirectSenderKeepsTheEndpointPolicy(t *testing.T) {
	srv := newHookServer(t, false, nil)
	sub := hookSub(srv.URL)
	w := defaultWebhook(4, &events.EndpointPolicy{}, "") // loopback refused
	res := openDirect(t, w, sub, 5*time.Second).Send(context.Background(), oneBatch(t, sub))
	if res.OK || res.Outcome != OutcomeNetworkError || !strings.Contains(res.Err, "loopback") {
		t.Errorf("%+v, want a NetworkError saying loopback is refused", res)
	}
	if srv.got() != 0 || srv.conns.Load() != 0 {
		t.Errorf("the endpoint was reached: %d requests, %d connections", srv.got(), srv.conns.Load())
	}
	w = defaultWebhook(4, &events.EndpointPolicy{AllowLoopback: true}, "")
	if res := openDirect(t, w, sub, 5*time.Second).Send(context.Background(), oneBatch(t, sub)); !res.OK {
		t.Errorf("loopback allowed: %+v", res)
	}
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A POST's deadline is the connection's own; a connection kept after a
// POST with one carries the next POST without one (a clock the tests
// drive) although that deadline has passed; a send whose context ends is
// not a timeout.
func TestDirectSenderDeadlineOnTheConnection(t *testing.T) {
	srv, h, tg := directTo(t)
	by := time.Now().Add(100 * time.Millisecond)
	if code, err := h.post(context.Background(), tg, nil, []byte("[]"), by); err != nil || code != 200 {
		t.Fatalf("POST with a deadline: %d, %v", code, err)
	}
	for now := time.Now(); now.Before(by); now = time.Now() {
		time.Sleep(by.Sub(now)) // until the first POST's deadline has passed
	}
	if code, err := h.post(context.Background(), tg, nil, []byte("[]"), time.Time{}); err != nil || code != 200 {
		t.Fatalf("POST without a deadline after one passed: %d, %v", code, err)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (kept)", n)
	}

	sub := hookSub(srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := openDirect(t, directHook(nil), sub, time.Minute).Send(ctx, oneBatch(t, sub))
	if res.OK || res.Outcome == OutcomeTimedOut {
		t.Errorf("send with its context ended: %+v, want a failure that is not a timeout", res)
	}
}
