package broker

import (
	"bytes"
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// A device that does not read what the hub sends is disconnected once a
// write to it has waited writeTimeout: writes go out without a deadline
// while the socket takes them (wakeConn.Write) and arm one only when its
// send buffer is full.
func TestDeviceThatDoesNotReadIsDisconnected(t *testing.T) {
	// Restored after the hub's Stop (cleanups run last first): its writers
	// read writeTimeout until then.
	t.Cleanup(func(d time.Duration) func() { return func() { writeTimeout = d } }(writeTimeout))
	writeTimeout = 300 * time.Millisecond
	h := startTestHub(t)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { // a small window: the hub's send buffer fills soon
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", h.b.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := newClient(t, c)
	cl.send(connectPacket(4, "d1", username("d1"), token(t, "d1"), 60, false))
	if p := cl.read(); p.ReasonCode != 0 {
		t.Fatalf("CONNACK %d", p.ReasonCode)
	}
	if s := h.b.table.live("d1"); s == nil || s.wake == nil {
		t.Fatal("no live session with a socket")
	} else if err := s.wake.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	cl.send(appendSubscribe(1, "devices/d1/messages/devicebound/#"))
	start := time.Now()
	for range c2dInflight { // ~1 MiB the device never reads
		if err := h.b.SendC2D(context.Background(), "d1", bytes.Repeat([]byte("x"), 60<<10), nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	evs := h.waitEvents("d1", 2)
	if evs[1].Reason != presence.ReasonNetwork || !strings.Contains(evs[1].Detail, "could not write") {
		t.Errorf("ended %s (%s), want a failed write", evs[1].Reason, evs[1].Detail)
	}
	if d := time.Since(start); d < writeTimeout {
		t.Errorf("ended %v after the messages were sent, before a write waited %v", d, writeTimeout)
	}
}
