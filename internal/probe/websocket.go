package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/gorilla/websocket"

	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/wsconn"
)

// webSocketStep is step 6: MQTT over WebSockets on the HTTPS port, through
// the proxy when one is given. SDKs use it where 8883 is blocked.
func (r *run) webSocketStep(ctx context.Context) Step {
	s := r.newStep(StepWebSocket, r.httpsTarget())
	if !r.needs(&s, StepTLS, r.httpsTarget()) {
		return s
	}
	res := &MQTTResult{Transport: "mqtt-ws", URL: r.webSocketURL(), Proxy: r.t.redactedProxy()}
	r.wsOK = r.exchange(ctx, &s, res, r.dialWebSocket)
	return s
}

func (r *run) webSocketURL() string {
	return "wss://" + r.httpsTarget() + mqttclient.WebSocketPath
}

// wsHTTPError is a WebSocket upgrade the server answered with a plain
// HTTP status.
type wsHTTPError struct {
	status int
	line   string
}

func (e *wsHTTPError) Error() string {
	return fmt.Sprintf("the server answered the WebSocket upgrade with HTTP %s, not 101: not an IoT hub's %s (or a proxy in between changed the request)", e.line, mqttclient.WebSocketPath)
}

// dialWebSocket upgrades to MQTT over WebSockets as the SDKs do:
// subprotocol "mqtt", and the server must select it.
func (r *run) dialWebSocket(ctx context.Context) (net.Conn, error) {
	wd := websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return r.dial(ctx, r.t.httpsPort)
		},
		TLSClientConfig:  r.tlsConfig(),
		Subprotocols:     []string{"mqtt"},
		HandshakeTimeout: r.t.timeout,
	}
	ws, resp, err := wd.DialContext(ctx, r.webSocketURL(), http.Header{})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			return nil, &wsHTTPError{resp.StatusCode, resp.Status}
		}
		return nil, fmt.Errorf("WebSocket: %w", err)
	}
	if ws.Subprotocol() != "mqtt" {
		ws.Close()
		return nil, errors.New("WebSocket: the server did not select subprotocol mqtt, which the SDKs require")
	}
	return wsconn.New(ws), nil
}
