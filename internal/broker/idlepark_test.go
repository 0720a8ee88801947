package broker

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
)

// batchConn holds what is written while batching and sends it in one
// write on flush: several TLS records arrive at the hub together, so the
// hub's recordConn reads ahead past the first.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      bytes.Buffer
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batching {
		return c.buf.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	_, err := c.Conn.Write(c.buf.Bytes())
	c.buf.Reset()
	return err
}

// A TLS session whose device sends several packets in separate records at
// once gets every one handled, although its reader parks on the socket
// between packets (idlepark.go): none waits in crypto/tls or the
// recordConn while the reader waits for the socket. After the PINGREQ the
// reader goes on on a new goroutine, and the session works and ends as
// before.
func TestIdleParkPipelinedTLS(t *testing.T) {
	h := startTestHub(t, withTLS)
	raw, err := net.Dial("tcp", h.b.TLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	bc := &batchConn{Conn: raw}
	tc := tls.Client(bc, &tls.Config{InsecureSkipVerify: true}) // the test's own dev certificate
	cl := h.handshake(tc, "d1")
	topic := "devices/d1/messages/events/"
	for round := range 4 {
		bc.mu.Lock()
		bc.batching = true
		bc.mu.Unlock()
		// The PINGREQ first, between and last: after it the reader moves
		// to a new goroutine that parks only if nothing is read ahead.
		for id := uint16(1); id <= 3; id++ {
			if int(id)-1 == round {
				cl.send(pingreq)
			}
			cl.send(publishPacket(topic, 1, id+uint16(10*round), []byte("x")))
		}
		if round == 3 {
			cl.send(pingreq)
		}
		if err := bc.flush(); err != nil {
			t.Fatal(err)
		}
		acks, pongs := map[uint16]bool{}, 0
		for range 4 {
			switch p := cl.read(); p.FixedHeader.Type {
			case packets.Puback:
				acks[p.PacketID] = true
			case packets.Pingresp:
				pongs++
			default:
				t.Fatalf("round %d: unexpected %s", round, packets.PacketNames[p.FixedHeader.Type])
			}
		}
		if len(acks) != 3 || pongs != 1 {
			t.Fatalf("round %d: PUBACKs for %v and %d PINGRESPs, want 3 and 1", round, acks, pongs)
		}
	}
	for range 12 {
		<-h.telemetry
	}
	// Eight PINGREQs fill the reader's 16-byte idle buffer exactly, and the
	// PUBLISH after them in the same record stays in crypto/tls: the
	// reader must not park on the socket then.
	cl.send(append(bytes.Repeat(pingreq, 8), publishPacket(topic, 1, 50, []byte("z"))...))
	pongs, acked := 0, false
	for range 9 {
		switch p := cl.read(); p.FixedHeader.Type {
		case packets.Pingresp:
			pongs++
		case packets.Puback:
			acked = p.PacketID == 50
		}
	}
	if pongs != 8 || !acked {
		t.Fatalf("%d PINGRESPs, PUBACK 50 %v; want 8 and true", pongs, acked)
	}
	<-h.telemetry
	// One packet alone, after the hop.
	cl.send(publishPacket(topic, 1, 99, []byte("y")))
	if p := cl.read(); p.FixedHeader.Type != packets.Puback || p.PacketID != 99 {
		t.Fatalf("got %s %d, want PUBACK 99", packets.PacketNames[p.FixedHeader.Type], p.PacketID)
	}
	<-h.telemetry
	cl.send(disconnectV3)
	evs := h.waitEvents("d1", 2)
	if evs[1].Kind != presence.Disconnected || evs[1].Reason != presence.ReasonClient {
		t.Fatalf("ended as %s %s (%s), want a client disconnect", evs[1].Kind, evs[1].Reason, evs[1].Detail)
	}
}

// A session whose reader parks on the socket still ends when its
// keep-alive lapses (1 s: silent for 1.5 s), on plain TCP and over TLS,
// before and after the reader moved to a new goroutine (after a PINGREQ).
func TestIdleParkKeepAliveLapses(t *testing.T) {
	for _, mode := range []string{"tcp", "tls"} {
		for _, ping := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ping=%v", mode, ping), func(t *testing.T) {
				t.Parallel()
				h := startTestHub(t, func(h *testHub, o *Options) {
					if mode == "tls" {
						withTLS(h, o)
					}
				})
				c := dialMode(t, h, mode)
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				t.Cleanup(func() { c.Close() })
				cl := newClient(t, c)
				cl.send(connectPacket(4, "d1", username("d1"), token(t, "d1"), 1, false))
				if p := cl.read(); p.FixedHeader.Type != packets.Connack || p.ReasonCode != 0 {
					t.Fatalf("CONNACK %s %d", packets.PacketNames[p.FixedHeader.Type], p.ReasonCode)
				}
				if ping {
					cl.send(pingreq)
					if p := cl.read(); p.FixedHeader.Type != packets.Pingresp {
						t.Fatalf("got %s, want PINGRESP", packets.PacketNames[p.FixedHeader.Type])
					}
				}
				evs := h.waitEvents("d1", 2)
				if evs[1].Reason != presence.ReasonKeepAlive {
					t.Fatalf("ended as %s (%s), want a keep-alive expiry", evs[1].Reason, evs[1].Detail)
				}
				cl.waitClosed()
			})
		}
	}
}

// pieceConn hands its stream out in pieces of the sizes it is given.
type pieceConn struct {
	net.Conn
	data   []byte
	pieces []byte
}

func (c *pieceConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.pieces) > 0 {
		n = max(1, int(c.pieces[0]))
		c.pieces = c.pieces[1:]
	}
	n = copy(p[:min(n, len(p))], c.data)
	c.data = c.data[n:]
	return n, nil
}

// FuzzRecordConn: whatever the stream and however the socket and tls cut
// it, recordConn hands up the stream unchanged, never past the end of a
// record (by the headers' lengths), and is quiet exactly at a record
// boundary with nothing read ahead.
func FuzzRecordConn(f *testing.F) {
	rec := func(n int) []byte { return append([]byte{23, 3, 3, byte(n >> 8), byte(n)}, make([]byte, n)...) }
	f.Add(append(rec(3), rec(20)...), []byte{1, 7, 200}, []byte{5, 3, 1, 100})
	f.Add(rec(0), []byte{}, []byte{})
	f.Add(append(rec(300), 23, 3), []byte{2, 255, 255}, []byte{9})
	f.Fuzz(func(t *testing.T, stream, pieces, reads []byte) {
		src := &pieceConn{data: bytes.Clone(stream), pieces: pieces}
		c := &recordConn{Conn: src}
		defer c.release()
		var got []byte
		// recEnd is where the record that starts at or spans pos ends, by
		// the stream's own headers (a truncated header: the stream's end).
		// whole says the record's header is all there.
		recEnd := func(pos int) (end int, whole bool) {
			at := 0
			for at <= pos {
				if at+5 > len(stream) {
					return len(stream), false
				}
				at += 5 + (int(stream[at+3])<<8 | int(stream[at+4]))
			}
			return at, true
		}
		for i := 0; ; i++ {
			n := 64
			if i < len(reads) {
				n = max(1, int(reads[i]))
			}
			p := make([]byte, n)
			m, err := c.Read(p)
			if end, _ := recEnd(len(got)); len(got)+m > end {
				t.Fatalf("read %d: handed up %d..%d, past the end of the record at %d", i, len(got), len(got)+m, end)
			}
			got = append(got, p[:m]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			fromSocket := len(stream) - len(src.data)
			atBoundary := len(got) == 0
			if !atBoundary {
				end, whole := recEnd(len(got) - 1)
				atBoundary = whole && end == len(got)
			}
			if want := atBoundary && len(got) == fromSocket; c.quiet() != want {
				t.Fatalf("read %d: quiet %v with %d of %d bytes read from the socket handed up (at a record boundary: %v)", i, c.quiet(), len(got), fromSocket, atBoundary)
			}
		}
		if !bytes.Equal(got, stream) {
			t.Fatalf("handed up %d bytes, not the %d of the stream", len(got), len(stream))
		}
	})
}

// splitConn writes each write in two: its first cut bytes, and the rest
// once ready says so.
type splitConn struct {
	net.Conn
	cut   int
	ready func()
}

func (c *splitConn) Write(p []byte) (int, error) {
	if c.cut == 0 || len(p) <= c.cut {
		return c.Conn.Write(p)
	}
	n, err := c.Conn.Write(p[:c.cut])
	if err != nil {
		return n, err
	}
	c.ready()
	m, err := c.Conn.Write(p[c.cut:])
	return n + m, err
}

// An idle session holds no goroutine: after its CONNACK, and after each
// PINGREQ, its socket is in the idle poller, which answers PINGREQs
// itself (idlepark.go). A packet other than PINGREQ, and one that arrives
// in pieces, goes to a goroutine of the session's, which parks again after
// the next PINGREQ; the connect phase's deadline does not follow the
// session into the poller; the session ends as the device says.
func TestIdlePollerAnswersParkedSessions(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no idle poller on this platform")
	}
	for _, mode := range []string{"tcp", "tls"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := startTestHub(t, func(h *testHub, o *Options) {
				if mode == "tls" {
					withTLS(h, o)
				}
				o.ConnectTimeout = 100 * time.Millisecond
			})
			raw := dialMode(t, h, "tcp")
			if mode == "tls" {
				raw.Close()
				var err error
				if raw, err = net.Dial("tcp", h.b.TLSAddr()); err != nil {
					t.Fatal(err)
				}
			}
			sc := &splitConn{Conn: raw}
			var c net.Conn = sc
			if mode == "tls" {
				c = tls.Client(sc, &tls.Config{InsecureSkipVerify: true}) // the test's own dev certificate
			}
			cl := h.handshake(c, "d1")
			s := h.b.table.live("d1")
			parked := func() bool { return s.parkState.Load() == parkParked }
			h.waitFor("the session to park after its CONNACK", parked)
			time.Sleep(300 * time.Millisecond) // past the connect timeout
			for i := range 3 {
				cl.send(pingreq)
				if p := cl.read(); p.FixedHeader.Type != packets.Pingresp {
					t.Fatalf("ping %d: got %s, want PINGRESP", i, packets.PacketNames[p.FixedHeader.Type])
				}
				h.waitFor("the session to park again", parked)
			}
			topic := "devices/d1/messages/events/"
			cl.send(publishPacket(topic, 1, 7, []byte("x")))
			if p := cl.read(); p.FixedHeader.Type != packets.Puback || p.PacketID != 7 {
				t.Fatalf("got %s %d, want PUBACK 7", packets.PacketNames[p.FixedHeader.Type], p.PacketID)
			}
			<-h.telemetry
			if parked() {
				t.Fatal("parked after a PUBLISH: a busy device keeps its reader")
			}
			cl.send(pingreq)
			if p := cl.read(); p.FixedHeader.Type != packets.Pingresp {
				t.Fatalf("got %s, want PINGRESP", packets.PacketNames[p.FixedHeader.Type])
			}
			h.waitFor("the session to park after the PINGREQ", parked)
			// A PINGREQ in two pieces: the poller finds the first piece
			// alone and leaves the session to a reader, which waits for
			// the rest.
			sc.cut = 1
			sc.ready = func() { h.waitFor("the poller to hand the session on", func() bool { return !parked() }) }
			cl.send(pingreq)
			sc.cut = 0
			if p := cl.read(); p.FixedHeader.Type != packets.Pingresp {
				t.Fatalf("got %s, want PINGRESP", packets.PacketNames[p.FixedHeader.Type])
			}
			h.waitFor("the session to park after the split PINGREQ", parked)
			cl.send(disconnectV3)
			evs := h.waitEvents("d1", 2)
			if evs[1].Reason != presence.ReasonClient {
				t.Fatalf("ended as %s (%s), want a client disconnect", evs[1].Reason, evs[1].Detail)
			}
		})
	}
}

// Parked sessions hold no goroutine: 50 of them add none (the connect
// phase's worker stays for the next connection).
func TestParkedSessionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no idle poller on this platform")
	}
	h := startTestHub(t)
	h.connect("d0", 4)
	h.waitFor("d0 to park", func() bool { return h.b.table.live("d0").parkState.Load() == parkParked })
	before := runtime.NumGoroutine()
	for i := 1; i <= 50; i++ {
		d := fmt.Sprintf("d%d", i)
		h.connect(d, 4)
		h.waitFor(d+" to park", func() bool { return h.b.table.live(d).parkState.Load() == parkParked })
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("%d goroutines with 51 sessions parked, %d with one", n, before)
	}
}
