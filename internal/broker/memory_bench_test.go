package broker

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkIdleSession measures what an idle established session costs the
// hub in memory: goroutine stack and heap per connection, read from the
// runtime after a GC with the sessions held (the clients here hold sockets
// only, no goroutines, so the stack figure is the hub's alone; the heap
// figure includes the clients' small net.Conn values). bench/ measures
// whole-process RSS side by side with other brokers.
//
//	go test -run X -bench IdleSession -benchtime 1x ./internal/broker/
func BenchmarkIdleSession(b *testing.B) {
	for _, mode := range []string{"tcp", "tls"} {
		b.Run(mode, func(b *testing.B) {
			const n = 2000
			h := startTestHub(&testing.T{}, func(h *testHub, o *Options) {
				if mode == "tls" {
					withTLS(h, o)
				}
			})
			defer func() { _ = h.b.Stop(b.Context()) }()
			tokens := make([]string, n)
			for i := range n {
				tokens[i] = token(b, fmt.Sprintf("d%05d", i))
			}
			for b.Loop() {
				before := readMem()
				conns := make([]net.Conn, 0, n)
				for i := range n {
					conns = append(conns, dialSession(b, h, mode, fmt.Sprintf("d%05d", i), tokens[i]))
				}
				time.Sleep(500 * time.Millisecond) // readers parked in Read
				after := readMem()
				b.ReportMetric(float64(after.stack-before.stack)/n, "stack-B/conn")
				b.ReportMetric(float64(after.heap-before.heap)/n, "heap-B/conn")
				// Live bytes right after a GC: heap-B/conn less this is what
				// freed connect-time garbage leaves in spans that still hold
				// a live object (fragmentation).
				b.ReportMetric(float64(after.live-before.live)/n, "live-B/conn")
				b.ReportMetric(float64(after.goroutines-before.goroutines)/n, "goroutines/conn")
				// Every session answers a PINGREQ; without a GC in
				// between, a reader whose stack grew to answer shows here.
				for _, c := range conns {
					if _, err := c.Write([]byte{0xC0, 0}); err != nil {
						b.Fatal(err)
					}
				}
				for _, c := range conns {
					var resp [2]byte
					if _, err := io.ReadFull(c, resp[:]); err != nil || resp[0] != 0xD0 {
						b.Fatalf("PINGRESP % x %v", resp, err)
					}
				}
				time.Sleep(200 * time.Millisecond)
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(int(ms.StackInuse)-before.stack)/n, "pinged-stack-B/conn")
				for _, c := range conns {
					c.Close()
				}
				h.waitFor("sessions to end", func() bool { return len(h.b.table.all()) == 0 })
			}
		})
	}
}

type memReading struct{ stack, heap, live, goroutines int }

func readMem() memReading {
	runtime.GC()
	runtime.GC() // a second cycle shrinks stacks again
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memReading{stack: int(ms.StackInuse), heap: int(ms.HeapInuse), live: int(ms.HeapAlloc), goroutines: runtime.NumGoroutine()}
}

// dialMode opens a connection to h's TLS listener (mode "tls") or its
// plain TCP one.
func dialMode(tb testing.TB, h *testHub, mode string) net.Conn {
	tb.Helper()
	var c net.Conn
	var err error
	if mode == "tls" {
		c, err = tls.Dial("tcp", h.b.TLSAddr(), &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", h.b.TCPAddr())
	}
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func dialSession(b *testing.B, h *testHub, mode, device, tok string) net.Conn {
	c := dialMode(b, h, mode)
	if _, err := c.Write(connectPacket(4, device, username(device), tok, 60, false)); err != nil {
		b.Fatal(err)
	}
	var ack [4]byte
	if _, err := c.Read(ack[:]); err != nil || ack[0] != 0x20 {
		b.Fatalf("CONNACK % x %v", ack, err)
	}
	return c
}

// BenchmarkIdlePing measures the process CPU (getrusage: hub and clients
// together, the clients' share the same in every variant) per PINGREQ of
// idle sessions, each pinged in turn as an idle fleet does: parked in the
// idle poller, which answers (poll), waiting on their goroutines with the
// hop to a fresh one after a TLS PINGREQ (hop), and without it (stay);
// idlepark.go.
//
//	go test -run X -bench IdlePing -benchtime 1x ./internal/broker/
func BenchmarkIdlePing(b *testing.B) {
	for _, mode := range []string{"tcp", "tls"} {
		for _, m := range []struct {
			name string
			mode int
		}{{"poll", idlePoll}, {"hop", idleHop}, {"stay", idleStay}} {
			b.Run(mode+"/"+m.name, func(b *testing.B) {
				defer func(v int) { idleMode = v }(idleMode)
				idleMode = m.mode
				const n = 500
				h := startTestHub(&testing.T{}, func(h *testHub, o *Options) {
					if mode == "tls" {
						withTLS(h, o)
					}
				})
				defer func() { _ = h.b.Stop(b.Context()) }()
				conns := make([]net.Conn, 0, n)
				for i := range n {
					d := fmt.Sprintf("d%05d", i)
					conns = append(conns, dialSession(b, h, mode, d, token(b, d)))
				}
				time.Sleep(200 * time.Millisecond)
				const rounds = 4
				cpu0 := processCPU()
				for b.Loop() {
					for range rounds {
						for i, c := range conns {
							if _, err := c.Write([]byte{0xC0, 0}); err != nil {
								b.Fatal(err)
							}
							var resp [2]byte
							if _, err := io.ReadFull(c, resp[:]); err != nil || resp[0] != 0xD0 {
								evs := h.waitEvents(fmt.Sprintf("d%05d", i), 2)
								b.Fatalf("PINGRESP % x %v %+v", resp, err, evs[1])
							}
							time.Sleep(100 * time.Microsecond) // one at a time, with the hub idle between
						}
					}
				}
				b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(n*rounds*b.N), "cpu-µs/ping")
				for _, c := range conns {
					c.Close()
				}
			})
		}
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
