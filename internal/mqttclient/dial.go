package mqttclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-hub/tether/internal/wsconn"
)

// WebSocketPath is where IoT Hub (and Tether) serve MQTT over WebSockets.
const WebSocketPath = "/$iothub/websocket"

// Dialer opens device connections.
type Dialer struct {
	// Addr is host:port of the MQTT (TLS or TCP) port, or of the HTTPS port
	// when WebSocket is set.
	Addr string
	// TLS, when not nil, wraps the connection (and is the wss:// config).
	TLS *tls.Config
	// WebSocket dials wss:// (ws:// without TLS) Addr + WebSocketPath with
	// subprotocol "mqtt".
	WebSocket bool
	// Source is the local address to dial from (nil: any). Spreading
	// connections over 127.0.0.2… avoids running out of ephemeral ports.
	Source net.IP
	// Timeout caps dial + handshake + CONNECT → CONNACK (default 30 s).
	Timeout time.Duration
	// Wrap, when set, wraps the TCP connection before TLS (fault
	// injection: slow handshakes).
	Wrap func(net.Conn) net.Conn
}

// Phase names where a Dial failed.
const (
	PhaseDial    = "dial"
	PhaseTLS     = "tls"
	PhaseConnect = "connect"
	PhaseConnack = "connack"
)

// DialError says in which phase a Dial failed.
type DialError struct {
	Phase string
	Err   error
}

func (e *DialError) Error() string { return e.Phase + ": " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// Dial connects, sends the pre-encoded CONNECT and reads the CONNACK. A
// refused CONNACK is returned as a DialError wrapping a ConnackError.
func (d *Dialer) Dial(ctx context.Context, connect []byte) (*Conn, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var nc net.Conn
	var err error
	if d.WebSocket {
		nc, err = d.dialWS(ctx)
	} else {
		nc, err = d.dialTCP(ctx)
	}
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()
	_ = nc.SetDeadline(deadline)
	sent := time.Now()
	if _, err := nc.Write(connect); err != nil {
		nc.Close()
		return nil, &DialError{PhaseConnect, err}
	}
	if _, err := ReadConnack(nc); err != nil {
		nc.Close()
		return nil, &DialError{PhaseConnack, err}
	}
	if !stop() {
		nc.Close()
		return nil, &DialError{PhaseConnack, ctx.Err()}
	}
	_ = nc.SetDeadline(time.Time{})
	c := newConn(nc)
	c.ConnectSent = sent
	return c, nil
}

func (d *Dialer) netDialer() *net.Dialer {
	nd := &net.Dialer{}
	if d.Source != nil {
		nd.LocalAddr = &net.TCPAddr{IP: d.Source}
		nd.Control = BindNoPort
	}
	return nd
}

func (d *Dialer) dialTCP(ctx context.Context) (net.Conn, error) {
	nc, err := d.netDialer().DialContext(ctx, "tcp", d.Addr)
	if err != nil {
		return nil, &DialError{PhaseDial, err}
	}
	if d.Wrap != nil {
		nc = d.Wrap(nc)
	}
	if d.TLS == nil {
		return nc, nil
	}
	tc := tls.Client(nc, d.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, &DialError{PhaseTLS, err}
	}
	return tc, nil
}

func (d *Dialer) dialWS(ctx context.Context) (net.Conn, error) {
	scheme := "ws"
	if d.TLS != nil {
		scheme = "wss"
	}
	nd := d.netDialer()
	wd := websocket.Dialer{
		TLSClientConfig:  d.TLS,
		Subprotocols:     []string{"mqtt"},
		HandshakeTimeout: d.Timeout,
		ReadBufferSize:   512,
		WriteBufferSize:  512,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := nd.DialContext(ctx, network, addr)
			if err == nil && d.Wrap != nil {
				nc = d.Wrap(nc)
			}
			return nc, err
		},
	}
	ws, resp, err := wd.DialContext(ctx, scheme+"://"+d.Addr+WebSocketPath, http.Header{})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, &DialError{PhaseTLS, fmt.Errorf("websocket: %w", err)}
	}
	if ws.Subprotocol() != "mqtt" {
		ws.Close()
		return nil, &DialError{PhaseTLS, errors.New("websocket: server did not select subprotocol mqtt")}
	}
	return wsconn.New(ws), nil
}

// BindNoPort sets IP_BIND_ADDRESS_NO_PORT, so a bound source address does
// not reserve an ephemeral port before connect (thousands of TIME_WAIT
// sockets from earlier runs then do not matter). Use as net.Dialer.Control.
func BindNoPort(_, _ string, rc syscall.RawConn) error {
	const ipBindAddressNoPort = 24 // linux/in.h
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	return errors.Join(err, serr)
}
