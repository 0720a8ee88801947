package broker

import (
	"crypto/x509"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/tether-hub/tether/internal/wsconn"
)

// WebSocketPath is where IoT Hub serves MQTT over WebSockets.
const WebSocketPath = "/$iothub/websocket"

// wsHandler takes MQTT over WebSockets from the hub's HTTPS server: the
// HTTPS port carries the registry API and MQTT-WS alike, as IoT Hub's 443
// does. An upgraded connection is a session like any other; the HTTPS
// listener should be wrapped with WakeListener so the hub can end it
// without losing what the device already sent.
type wsHandler struct {
	b        *Broker
	upgrader websocket.Upgrader
}

func newWSHandler(b *Broker) *wsHandler {
	return &wsHandler{b: b, upgrader: websocket.Upgrader{
		Subprotocols:    []string{"mqtt"}, // the SDK aborts unless the server picks "mqtt"
		CheckOrigin:     func(*http.Request) bool { return true },
		WriteBufferPool: &sync.Pool{}, // no write buffer held by an idle connection
	}}
}

// ServeHTTP upgrades, runs the connect phase on the request's goroutine and
// leaves the session's reader to a goroutine of its own.
func (h *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.b.table.stopping.Load() {
		http.Error(w, "the hub is shutting down", http.StatusServiceUnavailable)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "this endpoint speaks MQTT over WebSockets (subprotocol mqtt); send a WebSocket upgrade", http.StatusBadRequest)
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader already answered with the reason
	}
	var chain []*x509.Certificate
	if r.TLS != nil { // the client certificate of an X.509 device, if any
		chain = r.TLS.PeerCertificates
	}
	s := h.b.newSession(wsconn.New(ws), wakeConnOf(ws.NetConn()), protoMQTTWS, r.RemoteAddr)
	s.serve(nil, chain, 0)
}
