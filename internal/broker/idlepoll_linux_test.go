//go:build linux

package broker

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/sys/unix"
)

// fillSocket writes zeros into fd without waiting until its send buffer
// (and the peer's receive buffer) takes not one byte more, and returns how
// many it wrote.
func fillSocket(t *testing.T, fd int) int {
	t.Helper()
	chunk := make([]byte, 64<<10)
	written := 0
	for size := len(chunk); size > 0; size /= 4 {
		for {
			n, err := unix.Write(fd, chunk[:size])
			if errors.Is(err, syscall.EAGAIN) {
				break
			}
			if err != nil {
				t.Fatalf("filling the socket: %v after %d bytes", err, written)
			}
			written += n
		}
	}
	return written
}

// A write with oweRest never waits: what a full socket does not take is
// owed, and the next write sends it first, so the device reads every byte
// in order.
func TestOwedWriteIsSentFirst(t *testing.T) {
	w, peer := tcpPair(t)
	_ = peer.SetReadBuffer(4096)
	_ = w.SetWriteBuffer(4096)
	w.setWriteWait(time.Minute)
	rc, err := w.TCPConn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	_ = rc.Control(func(u uintptr) { fd = int(u) })
	filled := fillSocket(t, fd)
	w.oweRest = true
	n, err := w.Write(pingresp)
	w.oweRest = false
	if n != len(pingresp) || err != nil {
		t.Fatalf("an owing write returned %d, %v", n, err)
	}
	if string(w.owed) != string(pingresp) {
		t.Fatalf("owed %x with the socket full, want the whole PINGRESP", w.owed)
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, filled+len(pingresp)+len("after"))
		_ = peer.SetReadDeadline(time.Now().Add(time.Minute))
		k, _ := io.ReadFull(peer, b)
		got <- b[:k]
	}()
	if _, err := w.Write([]byte("after")); err != nil { // waits until the peer reads
		t.Fatal(err)
	}
	if len(w.owed) != 0 {
		t.Fatalf("still owed after a write: %x", w.owed)
	}
	b := <-got
	if len(b) != filled+len(pingresp)+len("after") {
		t.Fatalf("the peer read %d bytes, want %d", len(b), filled+len(pingresp)+len("after"))
	}
	if tail := string(b[filled:]); tail != string(pingresp)+"after" {
		t.Fatalf("after the filler the peer read %x, want the owed PINGRESP and then the next write", tail)
	}
}

// A parked device that does not read what it is sent does not hold the
// poller: its PINGRESP, which its full socket cannot take, is owed and
// sent by its own goroutine once the device reads (within the write
// timeout), while the poller goes on answering the other parked sessions.
func TestPollerOwesPingrespToADeviceThatDoesNotRead(t *testing.T) {
	t.Cleanup(func(d time.Duration) func() { return func() { writeTimeout = d } }(writeTimeout))
	writeTimeout = 5 * time.Minute // a poller that waited would wait this long
	h := startTestHub(t)
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	}}
	rawA, err := d.Dial("tcp", h.b.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	a := h.handshake(rawA, "da")
	b, _ := h.connect("db", 4)
	sa, sb := h.b.table.live("da"), h.b.table.live("db")
	parked := func(s *session) func() bool { return func() bool { return s.parkState.Load() == parkParked } }
	h.waitFor("a to park", parked(sa))
	h.waitFor("b to park", parked(sb))
	// Parked: nobody else writes to it. A fixed send buffer does not grow
	// back room while the device reads nothing.
	if err := unix.SetsockoptInt(int(sa.fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	// The kernel finds the peer a little more room for a while after the
	// first fill (it packs its receive queue): fill until a fill 100 ms
	// after the last one takes nothing.
	filled := 0
	for round := 0; ; round++ {
		n := fillSocket(t, int(sa.fd))
		filled += n
		if n == 0 && round > 0 {
			break
		}
		if round == 50 {
			t.Fatal("the socket still takes bytes after 50 fills")
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.send(pingreq)
	h.waitFor("the poller to hand a on", func() bool { return !parked(sa)() })
	_ = b.c.SetDeadline(time.Now().Add(time.Minute))
	b.send(pingreq)
	if p := b.read(); p.FixedHeader.Type != packets.Pingresp {
		t.Fatalf("b got %s, want PINGRESP", packets.PacketNames[p.FixedHeader.Type])
	}
	_ = rawA.SetDeadline(time.Now().Add(time.Minute))
	all := make([]byte, filled+len(pingresp))
	if _, err := io.ReadFull(rawA, all); err != nil {
		t.Fatalf("a read: %v", err)
	}
	if tail := all[filled:]; string(tail) != string(pingresp) {
		t.Fatalf("a read %x after the filler, want the PINGRESP", tail)
	}
	a.send(pingreq)
	if p := a.read(); p.FixedHeader.Type != packets.Pingresp {
		t.Fatalf("a got %s after reading, want PINGRESP", packets.PacketNames[p.FixedHeader.Type])
	}
	if evs := h.events("da"); len(evs) != 1 {
		t.Fatalf("a's session: %d events, want only its connect", len(evs))
	}
}
