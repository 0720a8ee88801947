package broker

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/tether-hub/tether/internal/wsconn"
)

// WebSocketPath is where IoT Hub serves MQTT over WebSockets.
const WebSocketPath = "/$iothub/websocket"

// wsListener hands WebSocket connections upgraded by the HTTPS server to
// mochi. It opens no socket of its own: the hub's HTTPS port carries the
// registry API and MQTT-WS alike, as IoT Hub's 443 does.
type wsListener struct {
	id             string
	connectTimeout time.Duration
	onFailure      preConnectFailure
	upgrader       websocket.Upgrader
	closeClients   func(listenerID string) // the broker's; mochi's if nil

	mu        sync.Mutex
	establish listeners.EstablishFn
	closed    bool
	done      chan struct{}
	log       *slog.Logger
}

var _ listeners.Listener = (*wsListener)(nil)

func newWSListener(id string, connectTimeout time.Duration, onFailure preConnectFailure) *wsListener {
	return &wsListener{
		id: id, connectTimeout: connectTimeout, onFailure: onFailure, done: make(chan struct{}),
		upgrader: websocket.Upgrader{
			Subprotocols: []string{"mqtt"}, // the SDK aborts unless the server picks "mqtt"
			CheckOrigin:  func(*http.Request) bool { return true },
		},
	}
}

func (l *wsListener) ID() string                  { return l.id }
func (l *wsListener) Address() string             { return WebSocketPath }
func (l *wsListener) Protocol() string            { return protoMQTTWS }
func (l *wsListener) Init(log *slog.Logger) error { l.log = log; return nil }

// Serve records the establish function; connections arrive via ServeHTTP.
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	l.establish = establish
	l.mu.Unlock()
	<-l.done
}

func (l *wsListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	l.mu.Unlock()
	closeWith(l.closeClients, closeClients, l.id)
}

// ServeHTTP upgrades and runs the MQTT session until it ends.
func (l *wsListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	establish, closed := l.establish, l.closed
	l.mu.Unlock()
	if establish == nil || closed {
		http.Error(w, "MQTT over WebSockets is not being served", http.StatusServiceUnavailable)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "this endpoint speaks MQTT over WebSockets (subprotocol mqtt); send a WebSocket upgrade", http.StatusBadRequest)
		return
	}
	ws, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader already answered with the reason
	}
	wc := wsconn.New(ws)
	tc := &trackedConn{Conn: wc, sock: socketOf(ws.NetConn())}
	_ = wc.SetDeadline(time.Now().Add(l.connectTimeout))
	tc.finish(protoMQTTWS, r.RemoteAddr, establish(l.id, tc), l.onFailure)
	_ = wc.Close()
}
