// Package wsconn presents a gorilla WebSocket as a net.Conn byte stream
// for MQTT over WebSockets, on both sides (the broker's listener and the
// simulator's client): MQTT packets may span or share binary frames
// [MQTT-6.0.0-2], and text frames are an error [MQTT-6.0.0-1].
package wsconn

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Conn is a WebSocket read and written as a stream of bytes.
type Conn struct {
	ws  *websocket.Conn
	r   io.Reader // current message
	wmu sync.Mutex
}

// New wraps ws.
func New(ws *websocket.Conn) *Conn { return &Conn{ws: ws} }

// ErrTextFrame is returned by Read for a text frame.
var ErrTextFrame = errors.New("websocket: MQTT must be sent in binary frames")

// Read drains messages in order; a close frame reads as io.EOF.
func (c *Conn) Read(p []byte) (int, error) {
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
				return 0, ErrTextFrame
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

// Write sends p as one binary message (gorilla allows one writer at a
// time).
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *Conn) Close() error                      { return c.ws.Close() }
func (c *Conn) LocalAddr() net.Addr               { return c.ws.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr              { return c.ws.RemoteAddr() }
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline is serialised with writes: gorilla reads its write
// deadline inside WriteMessage (the broker sets deadlines from whichever
// goroutine writes).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.SetWriteDeadline(t)
}

func (c *Conn) SetDeadline(t time.Time) error {
	_ = c.ws.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}
