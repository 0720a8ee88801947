package main

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/bench/internal/stormrun"
	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/sas"
)

// plan is what a run builds before its first dial: the TLS config, every
// device's CONNECT (SAS token signed) and the source addresses.
type plan struct {
	tcfg    *tls.Config
	packets [][]byte
	srcs    []*net.TCPAddr
}

func makePlan(c config) (*plan, error) {
	tcfg, err := tlsConfig(c.mode)
	if err != nil {
		return nil, err
	}
	exp := time.Now().Add(24 * time.Hour)
	if c.expiry > 0 {
		exp = time.Unix(c.expiry, 0)
	}
	p := &plan{tcfg: tcfg, packets: make([][]byte, c.n)}
	for i := range p.packets {
		id := stormrun.DeviceID(c.first + i)
		key, _ := stormrun.DeviceKeys(c.seed, id)
		tok, err := sas.Sign(sas.DeviceResource(c.hub, id), key, "", exp)
		if err != nil {
			return nil, err
		}
		user := c.hub + "/" + id + "/?api-version=" + stormrun.APIVersion
		p.packets[i] = mqttclient.ConnectPacket(id, user, tok, uint16(c.keepAlive/time.Second), c.clean)
	}
	for a := c.srcFrom; a <= c.srcTo; a++ {
		p.srcs = append(p.srcs, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(a))})
	}
	return p, nil
}

type outcome struct {
	lat  time.Duration
	conn *mqttclient.Conn
	err  error
	// With -retry: the failed attempts before the outcome, by kind.
	fails map[string]int
	at    time.Time // when it connected
}

// connectAll opens every planned connection with c.conc connects in flight
// until c.phaseCap (connects not started by then stay untried) and returns
// the outcomes and the time from the first dial to the last CONNACK. The
// negotiated TLS parameters of the first connection go into res.
func connectAll(c config, p *plan, res *stormrun.Result) ([]outcome, time.Duration) {
	start := time.Now()
	deadline := start.Add(c.phaseCap)
	outs := make([]outcome, len(p.packets))
	var next atomic.Int64
	var first sync.Once
	var wg sync.WaitGroup
	for w := 0; w < c.conc && w < len(outs); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(outs) || time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				if c.retry {
					outs[i] = connectRetrying(c, p.tcfg, p.srcs[i%len(p.srcs)], p.packets[i], deadline)
				} else {
					conn, err := connectOne(c, p.tcfg, p.srcs[i%len(p.srcs)], p.packets[i])
					outs[i] = outcome{lat: time.Since(t0), conn: conn, err: err, at: time.Now()}
				}
				conn := outs[i].conn
				if conn != nil && p.tcfg != nil {
					first.Do(func() { describeTLS(res, conn.NetConn().(*tls.Conn)) })
				}
			}
		}()
	}
	wg.Wait()
	return outs, time.Since(start)
}

// connectOne dials from src, does the TLS handshake if any, sends CONNECT
// and reads a successful CONNACK, all within the per-connection cap.
func connectOne(c config, tcfg *tls.Config, src *net.TCPAddr, connect []byte) (*mqttclient.Conn, error) {
	d := mqttclient.Dialer{Addr: c.addr, TLS: tcfg, Source: src.IP, Timeout: c.dialTimeout}
	return d.Dial(context.Background(), connect)
}

// tally fills res's connect figures (counts, failures by kind, rate,
// CONNACK latency) from outs and returns the open connections.
func tally(res *stormrun.Result, outs []outcome, elapsed time.Duration) []*mqttclient.Conn {
	var lats []time.Duration
	var conns []*mqttclient.Conn
	var last time.Time
	res.Failures, res.FailSample = map[string]int{}, map[string]string{}
	res.RetryFailures = map[string]int{}
	for _, o := range outs {
		res.Attempts++
		for k, n := range o.fails {
			res.RetryFailures[k] += n
			res.Attempts += n
		}
		if o.at.After(last) {
			last = o.at
		}
		switch {
		case o.conn != nil:
			lats = append(lats, o.lat)
			conns = append(conns, o.conn)
		case o.err == nil:
			res.NotTried++
		default:
			k := failureKind(o.err)
			res.Failures[k]++
			if _, ok := res.FailSample[k]; !ok {
				res.FailSample[k] = o.err.Error()
			}
		}
	}
	res.Connected, res.Failed = len(conns), len(outs)-len(conns)-res.NotTried
	if !last.IsZero() {
		res.LastConnack = last.UnixMilli()
	}
	res.ConnectS = elapsed.Seconds()
	res.ConnectsPerS = float64(res.Connected) / elapsed.Seconds()
	slices.Sort(lats)
	res.LatP50ms, res.LatP99ms = ms(pct(lats, 50)), ms(pct(lats, 99))
	if len(lats) > 0 {
		res.LatMaxms = ms(lats[len(lats)-1])
	}
	return conns
}
