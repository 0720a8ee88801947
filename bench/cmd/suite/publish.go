package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/bench/internal/procstat"
	"github.com/tether-hub/tether/bench/internal/stormrun"
	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/mqttclient"
)

// pubResult is one broker's telemetry throughput.
type pubResult struct {
	Conns       int
	Window      int
	Seconds     float64
	Acked       int64
	PerSecond   float64
	CPUusPerMsg float64
	Errors      int64
}

// publish opens s.o.pubConns TLS connections to b and has each keep
// s.o.pubWindow QoS 1 PUBLISHes (64 bytes, to its device's telemetry
// topic) unacknowledged for s.o.pubFor; it counts PUBACKs and the broker's
// CPU over that time.
func (s *setup) publish(ctx context.Context, b *broker) (*pubResult, error) {
	o := s.o
	conf := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} // the client measures the broker, not PKI
	conns := make([]*mqttclient.Conn, o.pubConns)
	err := hubclient.ForEach(ctx, o.pubConns, 64, func(i int) error {
		user, pass, err := s.token(i)
		if err != nil {
			return err
		}
		d := mqttclient.Dialer{Addr: b.tls, TLS: conf, Source: net.IPv4(127, 0, 0, byte(2+i%19)), Timeout: 30 * time.Second}
		c, err := d.Dial(ctx, mqttclient.ConnectPacket(stormrun.DeviceID(i), user, pass, 600, true))
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns[i] = c
		return nil
	}, nil)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Disconnect()
				_ = c.Close()
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	procstat.WaitQuiet(b.pid, 250*time.Millisecond, 4, 0.1, 10*time.Second)
	var acked, errs atomic.Int64
	var counting atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	payload := make([]byte, 64)
	for i, c := range conns {
		credit := make(chan struct{}, o.pubWindow)
		for range o.pubWindow {
			credit <- struct{}{}
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			_ = c.ReadLoop(mqttclient.Handler{Puback: func(uint16) {
				if counting.Load() {
					acked.Add(1)
				}
				select {
				case credit <- struct{}{}:
				default:
				}
			}})
		}()
		go func() {
			defer wg.Done()
			topic := "devices/" + stormrun.DeviceID(i) + "/messages/events/"
			for {
				select {
				case <-stop:
					return
				case <-credit:
				}
				if _, err := c.Publish(topic, 1, payload); err != nil {
					errs.Add(1)
					return
				}
			}
		}()
	}
	time.Sleep(time.Second) // warm-up, not counted
	cpu0, _ := procstat.CPU(b.pid)
	t0 := time.Now()
	counting.Store(true)
	select {
	case <-time.After(o.pubFor):
	case <-ctx.Done():
	}
	counting.Store(false)
	el := time.Since(t0)
	cpu1, _ := procstat.CPU(b.pid)
	close(stop)
	for _, c := range conns {
		_ = c.Close()
	}
	wg.Wait()
	conns = nil
	r := &pubResult{Conns: o.pubConns, Window: o.pubWindow, Seconds: el.Seconds(), Acked: acked.Load(), Errors: errs.Load()}
	r.PerSecond = float64(r.Acked) / el.Seconds()
	if r.Acked > 0 {
		r.CPUusPerMsg = float64(cpu1-cpu0) * float64(procstat.TickDuration.Microseconds()) / float64(r.Acked)
	}
	return r, nil
}
