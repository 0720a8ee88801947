package app_test

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/mqttclient"
)

// BenchmarkTelemetryQoS1 drives QoS 1 telemetry through the whole hub
// (session layer, journal store before PUBACK) over plain TCP from 50
// connections, each keeping 8 messages unacknowledged; one op is one
// acknowledged message. The clients run in the same process, so use it to
// profile the hub's path (-cpuprofile), and bench/ for side-by-side rates.
//
//	go test -run X -bench TelemetryQoS1 -benchtime 100000x ./internal/app/
func BenchmarkTelemetryQoS1(b *testing.B) {
	const conns, window = 50, 8
	h := startHubWith(b, b.TempDir(), nil)
	cs := make([]net.Conn, conns)
	for i := range cs {
		id := fmt.Sprintf("bench-%02d", i)
		key := h.device(id)
		c, err := net.Dial("tcp", h.TCPAddr())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(mqttclient.ConnectPacket(id, username(id), h.token(id, key, time.Hour), 60, false)); err != nil {
			b.Fatal(err)
		}
		if _, err := mqttclient.ReadConnack(c); err != nil {
			b.Fatal(err)
		}
		cs[i] = c
	}
	payload := make([]byte, 64)
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / conns
	for i, c := range cs {
		n := per
		if i == 0 {
			n += b.N % conns
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := publishWindow(c, fmt.Sprintf("devices/bench-%02d/messages/events/", i), payload, n, window); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the process's user + system CPU time so far (hub and
// clients alike).
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// publishWindow publishes n QoS 1 messages keeping window unacknowledged.
func publishWindow(c net.Conn, topic string, payload []byte, n, window int) error {
	free := make(chan struct{}, window)
	for range window {
		free <- struct{}{}
	}
	acked := make(chan error, 1)
	go func() {
		var hdr [4]byte
		for got := 0; got < n; got++ {
			if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 0x40 {
				acked <- fmt.Errorf("PUBACK %d: % x %v", got, hdr, err)
				return
			}
			free <- struct{}{}
		}
		acked <- nil
	}()
	var buf []byte
	for i := range n {
		<-free
		buf = mqttclient.AppendPublish(buf[:0], topic, 1, uint16(i%65535+1), payload)
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	return <-acked
}

// BenchmarkConnect opens sessions through the whole hub over plain TCP
// (SAS check, presence, journal store before CONNACK, and the log writer,
// metrics and delivery consumers behind it), 16 in flight, each closed
// after its CONNACK; one op is one connect. cpu-µs/op includes the
// clients and the disconnects.
//
//	go test -run X -bench Connect -benchtime 5000x ./internal/app/
func BenchmarkConnect(b *testing.B) {
	const devices, par = 200, 16
	h := startHubWith(b, b.TempDir(), nil)
	connects := make([][]byte, devices)
	for i := range connects {
		id := fmt.Sprintf("bench-%03d", i)
		connects[i] = mqttclient.ConnectPacket(id, username(id), h.token(id, h.device(id), time.Hour), 60, true)
	}
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan int)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := net.Dial("tcp", h.TCPAddr())
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := c.Write(connects[i%devices]); err == nil {
					_, err = mqttclient.ReadConnack(c)
				}
				c.Close()
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
