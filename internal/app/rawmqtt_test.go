package app_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/tether-hub/tether/internal/mqttclient"
)

// rawConn is a hand-rolled MQTT 3.1.1 client for fault injection: it can
// stay silent (keep-alive loss), drop the socket without DISCONNECT, or
// send garbage, which library clients will not do.
type rawConn struct {
	net.Conn
}

// connectPacket builds a 3.1.1 CONNECT with username and password.
var connectPacket = mqttclient.ConnectPacket

// dialRaw opens a plain TCP or TLS connection to addr.
func dialRaw(addr string, tlsConf *tls.Config) (*rawConn, error) {
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if tlsConf != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tlsConf)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return &rawConn{c}, nil
}

// connect sends CONNECT and returns the CONNACK return code.
func (c *rawConn) connect(clientID, user, pass string, keepAlive uint16) (byte, error) {
	if _, err := c.Write(connectPacket(clientID, user, pass, keepAlive, false)); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, fmt.Errorf("reading CONNACK: %w", err)
	}
	if ack[0] != 0x20 || ack[1] != 2 {
		return 0, fmt.Errorf("not a CONNACK: % x", ack)
	}
	_ = c.SetReadDeadline(time.Time{})
	return ack[3], nil
}

// alive sends PINGREQ and reports whether PINGRESP came back in time.
func (c *rawConn) alive(wait time.Duration) bool {
	if _, err := c.Write([]byte{0xC0, 0}); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return false
		}
		if hdr[0] == 0xD0 {
			return true
		}
		// Skip anything else (e.g. a DISCONNECT before close).
		if _, err := io.CopyN(io.Discard, c, int64(hdr[1])); err != nil {
			return false
		}
	}
}

// disconnect sends DISCONNECT and closes.
func (c *rawConn) disconnect() {
	_, _ = c.Write([]byte{0xE0, 0})
	_ = c.Close()
}

// waitClosed reports whether the server closes the connection within d.
func (c *rawConn) waitClosed(d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}
