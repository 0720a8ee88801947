package app

import (
	"crypto/ed25519"
	"math"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/throttle"
)

// An unset connect rate is sized per transport (TLS at the key's cost,
// plain TCP at its own, lower one); a configured one with no plain-TCP
// rate applies to every connection, as before per-transport prices;
// negative values turn a rate off.
func TestLimitsSizeConnectsPerTransport(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil) // any server key: the sizing times its signature
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	c.Defaults()
	l, sized := c.limits(key)
	if sized == nil || l.ConnectRate != sized.TLSRate || l.PlainConnectRate != sized.PlainRate ||
		l.PlainConnectRate <= l.ConnectRate || l.Handshakes != max(minHandshakes, int(handshakeSeconds*l.ConnectRate)) {
		t.Fatalf("sized: %+v from %+v", l, sized)
	}
	for _, tc := range []struct {
		name             string
		connect, plain   float64
		wantTLS, wantRaw float64
	}{
		{"configured rate, one price", 300, 0, 300, 0},
		{"both configured", 300, 900, 300, 900},
		{"plain TCP off", 300, -1, 300, math.Inf(1)},
		{"all off", -1, 0, 0, 0},
		{"only plain TCP", -1, 900, 0, 900},
	} {
		c.Limits.ConnectRate, c.Limits.PlainConnectRate = tc.connect, tc.plain
		l, sized := c.limits(key)
		if sized != nil || l.ConnectRate != tc.wantTLS || l.PlainConnectRate != tc.wantRaw {
			t.Errorf("%s: connect %v plain %v (sized %v)", tc.name, l.ConnectRate, l.PlainConnectRate, sized)
		}
		lim, err := throttle.New(l, time.Now())
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		} else if lim.Limits().ConnectBurst <= 0 != (tc.wantTLS == 0 && tc.wantRaw == 0) {
			t.Errorf("%s: burst %d", tc.name, lim.Limits().ConnectBurst)
		}
	}
	c.Limits = throttle.Limits{}
	c.NoThrottle = true
	if l, sized := c.limits(key); l != (throttle.Limits{}) || sized != nil {
		t.Fatalf("--no-throttle: %+v", l)
	}
}
