package broker

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair is a connected loopback pair: the hub's side in a wakeConn.
func tcpPair(t *testing.T) (*wakeConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	w := newWakeConn(c)
	t.Cleanup(func() { w.Close(); peer.Close() })
	return w, peer
}

// A session's socket reads (raw system calls on Linux) behave as
// net.TCPConn's: data, waiting for data, a zero-length read, the read
// deadline (the keep-alive expiry's cause), the peer's FIN and reset, a
// wake, and a read after Close.
func TestWakeConnReadsAsTCPConn(t *testing.T) {
	w, peer := tcpPair(t)
	buf := make([]byte, 16)
	if n, err := w.Read(buf[:0]); n != 0 || err != nil {
		t.Errorf("zero-length read: %d, %v", n, err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond) // the reader waits in the poller first
		_, _ = peer.Write([]byte{0xC0, 0})
	}()
	if n, err := w.Read(buf); n != 2 || err != nil || buf[0] != 0xC0 {
		t.Fatalf("read % x, %v", buf[:n], err)
	}
	if n, err := w.Write([]byte{0xD0, 0}); n != 2 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(peer, got); err != nil || got[0] != 0xD0 {
		t.Fatalf("peer read % x, %v", got, err)
	}

	_ = w.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := w.Read(buf)
	if c := causeOfReadError(err); c != causeKeepAlive {
		t.Errorf("read past the deadline: %v, cause %+v; want the keep-alive cause", err, c)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Errorf("deadline error %#v, want a *net.OpError of op read", err)
	}
	_ = w.SetReadDeadline(time.Time{})

	// A wake ends a waiting read with errWoken.
	go func() { time.Sleep(50 * time.Millisecond); w.wake() }()
	if _, err := w.Read(buf); !errors.Is(err, errWoken) {
		t.Errorf("woken read: %v, want errWoken", err)
	}

	// The peer's FIN: io.EOF.
	w2, peer2 := tcpPair(t)
	peer2.Close()
	if _, err := w2.Read(buf); err != io.EOF {
		t.Errorf("read after the peer's FIN: %v, want io.EOF", err)
	}
	// A reset: a closed-connection cause.
	w3, peer3 := tcpPair(t)
	_ = peer3.SetLinger(0)
	_, _ = w3.Write([]byte{1})
	peer3.Close()
	if _, err := w3.Read(buf); !isClosedError(err) {
		t.Errorf("read after a reset: %v, want a closed-connection error", err)
	}
	// After Close: net.ErrClosed.
	w3.Close()
	if _, err := w3.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v, want net.ErrClosed", err)
	}
}
