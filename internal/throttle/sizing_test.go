package throttle

import (
	"math"
	"testing"
	"time"
)

// The acceptance load of issue 21: 5,000 connection events a second over
// plain TCP are 2,500 connects a second (each cycle a disconnect and a
// reconnect), which the hub sustained on 2 cores with the throttle off
// (bench/README.md, "Issue 21, session 11", latency11). The old sizing
// priced every connect as a TLS one (handshake + 370 µs: ~2,020/s).
const acceptanceConnects = 2500

// The default sizing prices a plain connect apart from a TLS one: the
// server key's work is only in the TLS price, so a slow key slows TLS
// connects alone, and 2 cores admit the acceptance rate over plain TCP.
func TestSizingPricesTransportsApart(t *testing.T) {
	const handshake = 125 * time.Microsecond // the dev ECDSA P-256 key here (start log)
	s := sizing(handshake, 2)
	if s.PlainCost != PlainConnectCost || s.TLSCost != handshake+TLSConnectOverhead+PlainConnectCost {
		t.Fatalf("costs %+v", s)
	}
	if s.PlainRate <= s.TLSRate || s.TLSRate != connectRate(s.TLSCost, 2) || s.PlainRate != connectRate(s.PlainCost, 2) {
		t.Fatalf("rates %+v", s)
	}
	if s.PlainRate < acceptanceConnects {
		t.Fatalf("2 cores admit %.0f plain connects/s; the hub sustains %d", s.PlainRate, acceptanceConnects)
	}
	rsa := sizing(time.Millisecond, 2) // an RSA 2048 key
	if rsa.PlainRate != s.PlainRate || rsa.TLSRate >= s.TLSRate {
		t.Fatalf("a slower key: %+v against %+v", rsa, s)
	}
}

// drive asks for n connects of kind spread evenly over d from t0 and
// returns how many were refused and the longest wait granted.
func drive(l *Limiter, kind ConnectKind, n int, d time.Duration, from time.Time) (refused int, longest time.Duration) {
	for i := range n {
		w, s := l.Connection("10.0.0.1", kind, from.Add(d*time.Duration(i)/time.Duration(n)))
		if s != ScopeNone {
			refused++
		}
		longest = max(longest, w)
	}
	return refused, longest
}

// The token bucket's decisions with a rate per transport, on a simulated
// clock: the acceptance load over plain TCP passes without a wait where
// one price for all made it queue and then refused it, and a TLS storm is
// held to the TLS rate.
func TestPlainConnectsAtTheirOwnPrice(t *testing.T) {
	limits := Limits{ConnectRate: 2000, PlainConnectRate: 5000, ConnectQueue: 10 * time.Second}
	l, err := New(limits, t0)
	if err != nil {
		t.Fatal(err)
	}
	if refused, longest := drive(l, ConnectPlain, 60*acceptanceConnects, time.Minute, t0); refused != 0 || longest != 0 {
		t.Fatalf("2,500 plain connects/s for a minute: %d refused, longest wait %v", refused, longest)
	}

	limits.PlainConnectRate = 0 // one price: the old sizing
	one, _ := New(limits, t0)
	refused, longest := drive(one, ConnectPlain, 60*acceptanceConnects, time.Minute, t0)
	if refused == 0 || longest < 9*time.Second {
		t.Fatalf("2,500 connects/s at 2,000/s for a minute: %d refused, longest wait %v", refused, longest)
	}

	// 50,000 TLS connections at once: the burst (one second's worth) and
	// ten seconds of the rate are admitted, the rest refused.
	storm, _ := New(Limits{ConnectRate: 2000, PlainConnectRate: 5000, ConnectQueue: 10 * time.Second}, t0)
	refused, longest = drive(storm, ConnectTLS, 50000, 0, t0)
	if admitted := 50000 - refused; admitted != 2000+10*2000 || longest != 10*time.Second {
		t.Fatalf("TLS storm: %d admitted, longest wait %v; want 22,000 within 10 s", admitted, longest)
	}
	// Plain connections share the storm's queue (one CPU), at their price.
	if _, s := storm.Connection("10.0.0.2", ConnectPlain, t0); s != ScopeHub {
		t.Fatalf("a plain connect during a full TLS queue: %s", s)
	}
}

// One bucket counted in TLS turns: a plain connect takes ConnectRate ÷
// PlainConnectRate of one, and waits for exactly what it lacks.
func TestConnectPrices(t *testing.T) {
	l, _ := New(Limits{ConnectRate: 2000, ConnectBurst: 2, PlainConnectRate: 5000, ConnectQueue: time.Second}, t0)
	for _, c := range []struct {
		kind ConnectKind
		wait time.Duration
	}{
		{ConnectTLS, 0}, {ConnectTLS, 0}, // the burst: 2 turns
		{ConnectPlain, 200 * time.Microsecond}, // 0.4 of a turn at 2,000 turns/s
		{ConnectTLS, 700 * time.Microsecond},   // 1.4 turns owed
		{ConnectPlain, 900 * time.Microsecond}, // 1.8
	} {
		if w, s := l.Connection("a", c.kind, t0); s != ScopeNone || math.Abs(float64(w-c.wait)) > 1 {
			t.Fatalf("kind %d: wait %v %s, want %v", c.kind, w, s, c.wait)
		}
	}
	for _, c := range []struct {
		limits   Limits
		rate     float64
		tls, raw float64
	}{
		{Limits{ConnectRate: 2000, PlainConnectRate: 5000}, 2000, 1, 0.4},
		{Limits{ConnectRate: 300}, 300, 1, 1},                                // one price
		{Limits{ConnectRate: 300, PlainConnectRate: math.Inf(1)}, 300, 1, 0}, // plain TCP off
		{Limits{PlainConnectRate: 5000}, 5000, 0, 1},                         // TLS off
		{Limits{PlainConnectRate: math.Inf(1)}, 0, 0, 0},
		{Limits{}, 0, 0, 0},
	} {
		rate, cost := connectPrices(c.limits)
		if rate != c.rate || cost[ConnectTLS] != c.tls || cost[ConnectPlain] != c.raw {
			t.Errorf("%+v: rate %v, costs %v; want %v, [%v %v]", c.limits, rate, cost, c.rate, c.tls, c.raw)
		}
	}
	// Plain TCP off: it never waits behind TLS connections.
	off, _ := New(Limits{ConnectRate: 10, ConnectBurst: 1, PlainConnectRate: math.Inf(1)}, t0)
	off.Connection("a", ConnectTLS, t0)
	if w, s := off.Connection("a", ConnectPlain, t0); w != 0 || s != ScopeNone {
		t.Fatalf("plain TCP with its limit off: %v %s", w, s)
	}
	if _, s := off.Connection("a", ConnectTLS, t0); s != ScopeHub {
		t.Fatalf("TLS past its rate: %s", s)
	}
}
