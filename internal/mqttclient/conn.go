package mqttclient

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Conn is an established MQTT session (CONNACK 0 received). Writes are
// serialised; reads happen only in ReadLoop.
type Conn struct {
	// ConnectSent is when the CONNECT was written (what a connect's
	// latency is measured from).
	ConnectSent time.Time

	nc  net.Conn
	wmu sync.Mutex
	buf []byte // publish encoding buffer, reused under wmu
	pid uint16
}

func newConn(nc net.Conn) *Conn { return &Conn{nc: nc} }

// NetConn is the underlying connection (TLS, TCP or WebSocket adapter).
func (c *Conn) NetConn() net.Conn { return c.nc }

// WriteTimeout bounds every write, so a stuck peer cannot block a device
// forever.
const WriteTimeout = 10 * time.Second

func (c *Conn) write(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(WriteTimeout))
	_, err := c.nc.Write(b)
	return err
}

// Publish sends payload to topic at qos 0 or 1 and returns the packet id
// used (0 for QoS 0). The PUBACK arrives in ReadLoop.
func (c *Conn) Publish(topic string, qos byte, payload []byte) (uint16, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var id uint16
	if qos > 0 {
		c.pid++
		if c.pid == 0 { // [MQTT-2.3.1-1]: non-zero
			c.pid = 1
		}
		id = c.pid
	}
	c.buf = AppendPublish(c.buf[:0], topic, qos, id, payload)
	return id, c.write(c.buf)
}

// Subscribe sends a SUBSCRIBE for one filter (the SUBACK arrives in
// ReadLoop).
func (c *Conn) Subscribe(filter string, qos byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.pid++
	if c.pid == 0 {
		c.pid = 1
	}
	c.buf = AppendSubscribe(c.buf[:0], c.pid, filter, qos)
	return c.write(c.buf)
}

// Ping sends PINGREQ.
func (c *Conn) Ping() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.write(pingreq)
}

// Disconnect sends DISCONNECT (bounded by one second) and half-closes
// the connection where it can (TCP FIN, TLS close_notify); it does not
// close it. Wait for ReadLoop to end (the hub closes after DISCONNECT),
// then Close: closing at once with unread bytes in the socket makes the
// kernel send a reset, which can destroy the DISCONNECT before the hub
// has read it, and the hub then records a network drop.
func (c *Conn) Disconnect() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := c.nc.Write(disconnect)
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && err == nil {
		err = cw.CloseWrite()
	}
	return err
}

// Close drops the connection without DISCONNECT (the hub sees the TCP
// close: a network drop).
func (c *Conn) Close() error { return c.nc.Close() }

// Handler receives what ReadLoop reads; nil members are skipped.
type Handler struct {
	Puback   func(packetID uint16)
	Pingresp func()
	// Publish gets a server PUBLISH (C2D); the slice is only valid during
	// the call. QoS 1 publishes are acknowledged by ReadLoop.
	Publish func(topic string, payload []byte)
}

// ReadLoop reads packets until the connection fails or is closed and
// returns that error (io.EOF when the server closed it cleanly).
func (c *Conn) ReadLoop(h Handler) error {
	var small [4]byte
	for {
		hd, err := ReadHeader(c.nc)
		if err != nil {
			return err
		}
		switch hd.Type {
		case TypePuback, TypeSuback:
			if hd.Remaining < 2 {
				return fmt.Errorf("%w: short PUBACK", ErrMalformed)
			}
			if _, err := io.ReadFull(c.nc, small[:2]); err != nil {
				return err
			}
			if _, err := io.CopyN(io.Discard, c.nc, int64(hd.Remaining-2)); err != nil {
				return err
			}
			if hd.Type == TypePuback && h.Puback != nil {
				h.Puback(binary.BigEndian.Uint16(small[:2]))
			}
		case TypePingresp:
			if h.Pingresp != nil {
				h.Pingresp()
			}
		case TypePublish:
			if err := c.readPublish(hd, h); err != nil {
				return err
			}
		default:
			if _, err := io.CopyN(io.Discard, c.nc, int64(hd.Remaining)); err != nil {
				return err
			}
		}
	}
}

func (c *Conn) readPublish(hd Header, h Handler) error {
	body := make([]byte, hd.Remaining)
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return err
	}
	if len(body) < 2 {
		return fmt.Errorf("%w: short PUBLISH", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(body))
	qos := hd.Flags >> 1 & 3
	off := 2 + n
	if qos > 0 {
		off += 2
	}
	if off > len(body) {
		return fmt.Errorf("%w: PUBLISH topic overruns the packet", ErrMalformed)
	}
	if h.Publish != nil {
		h.Publish(string(body[2:2+n]), body[off:])
	}
	if qos > 0 {
		c.wmu.Lock()
		err := c.write([]byte{TypePuback << 4, 2, body[2+n], body[3+n]})
		c.wmu.Unlock()
		return err
	}
	return nil
}
