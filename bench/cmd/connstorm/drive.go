package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/bench/internal/stormrun"
	"github.com/tether-hub/tether/internal/mqttclient"
)

// Driven mode (-drive) makes the same connects for a driver that runs
// several connstorm processes against one broker (more connections than one
// process may hold files for, from more source addresses) and reads the
// broker's CPU and memory itself. The driver writes one command a line on
// stdin; connstorm answers with one stormrun.DriveEvent a line on stdout:
//
//	(at start)  → ready       the CONNECT packets are built
//	connect     → connected   every connect was tried (Result: the connect figures)
//	stats       → stats       PINGREQs sent, PINGRESPs read, connections lost so far
//	close       → closed      every connection sent DISCONNECT and is closed; then connstorm exits
//
// Held connections keep alive as an idle device does: each sends a
// PINGREQ once every -keepalive, the first at a random point of its first
// period, so n connections make n/keepalive PINGREQs a second, spread
// evenly, and each reads its PINGRESP. stdin closing, or -hold-max passing,
// counts as close.
func drive(c config) error {
	p, err := makePlan(c)
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	emit := func(e stormrun.DriveEvent) {
		if err := out.Encode(e); err != nil {
			log.Fatalf("stdout: %v", err)
		}
	}
	cmds := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmds <- sc.Text()
		}
		close(cmds)
	}()
	expire := time.After(c.holdMax)
	next := func() string {
		select {
		case cmd, ok := <-cmds:
			if !ok {
				return "close"
			}
			return cmd
		case <-expire:
			log.Printf("-hold-max %v passed: closing", c.holdMax)
			return "close"
		}
	}

	emit(stormrun.DriveEvent{Event: "ready"})
	var h *holder
	for {
		cmd := next()
		switch {
		case cmd == "connect" && h == nil:
			res := &stormrun.Result{Broker: c.broker, Mode: c.mode, Addr: c.addr, N: c.n, Concurrency: c.conc,
				CleanSession: c.clean, Sources: len(p.srcs)}
			outs, elapsed := connectAll(c, p, res)
			h = hold(tally(res, outs, elapsed), c.keepAlive)
			log.Printf("%d connected, %d failed, %d not tried in %.2fs (bench-%d…)", res.Connected, res.Failed, res.NotTried, elapsed.Seconds(), c.first)
			emit(stormrun.DriveEvent{Event: "connected", Result: res})
		case cmd == "stats" && h != nil:
			emit(h.stats("stats"))
		case cmd == "close":
			e := stormrun.DriveEvent{Event: "closed"}
			if h != nil {
				e = h.close()
			}
			emit(e)
			return nil
		default:
			return fmt.Errorf("unexpected command %q", cmd)
		}
	}
}

// holder keeps connections alive until close: one goroutine each.
type holder struct {
	closing            chan struct{}
	wg                 sync.WaitGroup
	pings, pongs, lost atomic.Int64
	closedByBroker     atomic.Int64
}

func hold(conns []*mqttclient.Conn, keepAlive time.Duration) *holder {
	h := &holder{closing: make(chan struct{})}
	for _, cn := range conns {
		h.wg.Add(1)
		go h.keep(cn, rand.N(keepAlive), keepAlive)
	}
	return h
}

// keep pings every keepAlive (the first after phase) until close, then
// sends DISCONNECT and waits (bounded) for the broker to close.
func (h *holder) keep(cn *mqttclient.Conn, phase, keepAlive time.Duration) {
	defer h.wg.Done()
	nc := cn.NetConn()
	t := time.NewTimer(phase)
	defer t.Stop()
	for {
		select {
		case <-h.closing:
			if cn.Disconnect() == nil {
				// The broker closes after DISCONNECT: EOF, or a reset when
				// it closed with our close_notify unread.
				_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
				if _, err := io.Copy(io.Discard, nc); !errors.Is(err, os.ErrDeadlineExceeded) {
					h.closedByBroker.Add(1)
				}
			}
			_ = cn.Close()
			return
		case <-t.C:
		}
		if err := cn.Ping(); err != nil {
			h.fail(cn, "PINGREQ", err)
			return
		}
		h.pings.Add(1)
		_ = nc.SetReadDeadline(time.Now().Add(keepAlive / 2))
		hd, err := mqttclient.ReadHeader(nc)
		if err == nil && hd.Type != mqttclient.TypePingresp {
			err = fmt.Errorf("packet type %d instead of PINGRESP", hd.Type)
		}
		if err != nil {
			h.fail(cn, "PINGRESP", err)
			return
		}
		h.pongs.Add(1)
		t.Reset(keepAlive)
	}
}

func (h *holder) fail(cn *mqttclient.Conn, what string, err error) {
	if h.lost.Add(1) <= 3 {
		log.Printf("connection lost at %s: %v", what, err)
	}
	_ = cn.Close()
}

func (h *holder) stats(event string) stormrun.DriveEvent {
	return stormrun.DriveEvent{Event: event, Pings: h.pings.Load(), Pongs: h.pongs.Load(), Lost: h.lost.Load(), ClosedByBroker: h.closedByBroker.Load()}
}

func (h *holder) close() stormrun.DriveEvent {
	close(h.closing)
	h.wg.Wait()
	return h.stats("closed")
}
