package broker

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
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
	closeClients(l.id)
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
	wc := &wsConn{ws: ws}
	tc := &trackedConn{Conn: wc}
	_ = wc.SetDeadline(time.Now().Add(l.connectTimeout))
	tc.finish(protoMQTTWS, r.RemoteAddr, establish(l.id, tc), l.onFailure)
	_ = wc.Close()
}

// wsConn presents a WebSocket as a byte stream: MQTT packets may span or
// share binary frames.
type wsConn struct {
	ws  *websocket.Conn
	r   io.Reader
	wmu sync.Mutex
}

var errTextFrame = errors.New("websocket: MQTT must be sent in binary frames")

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			mt, r, err := c.ws.NextReader()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					return 0, io.EOF
				}
				return 0, err
			}
			if mt != websocket.BinaryMessage {
				return 0, errTextFrame
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error                      { return c.ws.Close() }
func (c *wsConn) LocalAddr() net.Addr               { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr              { return c.ws.RemoteAddr() }
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// gorilla reads its write deadline inside WriteMessage, so setting it is
// serialised with writes (mochi sets deadlines from the read goroutine
// while its write loop runs).
func (c *wsConn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.SetWriteDeadline(t)
}

func (c *wsConn) SetDeadline(t time.Time) error {
	_ = c.ws.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}
