package broker

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/wsconn"
)

// serveWS serves the broker's WebSocket handler over HTTPS the way the hub
// does (its listener wrapped with WakeListener) and returns the URL.
func serveWS(h *testHub) string {
	h.t.Helper()
	cert, err := certs.EnsureDev(h.t.TempDir(), []string{"localhost", "127.0.0.1"})
	if err != nil {
		h.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	srv := &http.Server{Handler: h.b.WebSocketHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(tls.NewListener(WakeListener(ln), conf)) }()
	h.t.Cleanup(func() { _ = srv.Close() })
	return "wss://" + ln.Addr().String() + WebSocketPath
}

func (h *testHub) connectWS(url, device string) *client {
	h.t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // the test's own dev certificate
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.handshake(wsconn.New(ws), device)
}

// MQTT over WebSockets: sessions end like the others, and a renewal's
// DISCONNECT, inside TLS and WebSocket framing, is still read before a
// takeover would be recorded.
func TestWebSocketRenewalIsNeverATakeover(t *testing.T) {
	h := startTestHub(t, func(_ *testHub, o *Options) { o.WebSocket = true })
	url := serveWS(h)
	const renewals = 100
	cl := h.connectWS(url, "d1")
	for range renewals {
		cl.send(disconnectV3)
		next := h.connectWS(url, "d1")
		cl.c.Close()
		cl = next
	}
	evs := h.waitEvents("d1", 2*renewals+1)
	checkRenewals(t, evs)
	for _, ev := range evs {
		if ev.Protocol != protoMQTTWS {
			t.Fatalf("event with protocol %q, want %s", ev.Protocol, protoMQTTWS)
		}
	}
	// And a silent old connection is taken over.
	next := h.connectWS(url, "d1")
	cl.waitClosed()
	if ev := h.waitEvents("d1", 2*renewals+3)[2*renewals+1]; ev.Reason != presence.ReasonTakeover {
		t.Errorf("silent WebSocket session ended as %s, want takeover", ev.Reason)
	}
	_ = next
}
