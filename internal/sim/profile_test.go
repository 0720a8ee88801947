package sim

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func seeded() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func TestRenewalPoints(t *testing.T) {
	cases := []struct {
		profile string
		ttl     time.Duration
		want    time.Duration
		mode    RenewMode
		keep    time.Duration
	}{
		{"node", time.Hour, 45 * time.Minute, RenewReconnect, 180 * time.Second}, // 3600 − 900 s
		{"node", 60 * time.Second, 45 * time.Second, RenewReconnect, 180 * time.Second},
		{"c", time.Hour, 48 * time.Minute, RenewReconnect, 240 * time.Second},
		{"csharp", time.Hour, 51 * time.Minute, RenewOnExpiry, 300 * time.Second}, // 85 %
		{"java", time.Hour, 51 * time.Minute, RenewOnExpiry, 230 * time.Second},
		{"python", time.Hour, 58 * time.Minute, RenewReconnect, 60 * time.Second}, // 120 s margin
		{"python", 60 * time.Second, 58 * time.Second, RenewReconnect, 60 * time.Second},
	}
	for _, c := range cases {
		p, err := LookupProfile(c.profile)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.RenewAfter(c.ttl); got.Round(time.Millisecond) != c.want {
			t.Errorf("%s ttl %s: renews after %s, want %s", c.profile, c.ttl, got, c.want)
		}
		if p.RenewMode != c.mode || p.KeepAlive != c.keep || p.TokenTTL != time.Hour {
			t.Errorf("%s: mode %v keep-alive %s ttl %s", c.profile, p.RenewMode, p.KeepAlive, p.TokenTTL)
		}
	}
	if _, err := LookupProfile("cobol"); err == nil {
		t.Fatal("unknown profile accepted")
	}
}

// Backoff sequences: bounds from the SDK formulas, and exact values for a
// seeded source (a change to the formulas shows up here).
func TestBackoffSequences(t *testing.T) {
	ms := time.Millisecond
	bounds := map[string][][2]time.Duration{
		// cMin + (2^(n-1)-1) × [0, 25 ms), cap 10 s
		"node": {{100 * ms, 100 * ms}, {100 * ms, 125 * ms}, {100 * ms, 175 * ms}, {100 * ms, 275 * ms}, {100 * ms, 475 * ms}, {100 * ms, 10 * time.Second}},
		// 100 ms + (2^(n-1)-1) × [80, 120) ms, cap 10 s
		"csharp": {{100 * ms, 100 * ms}, {180 * ms, 220 * ms}, {340 * ms, 460 * ms}, {660 * ms, 940 * ms}, {1300 * ms, 1900 * ms}},
		"java":   {{0, 0}, {180 * ms, 220 * ms}, {340 * ms, 460 * ms}, {660 * ms, 940 * ms}},
		// immediate, then (0, 1 s], (0, 2 s], (0, 4 s] …
		"c":      {{0, 0}, {0, time.Second}, {0, 2 * time.Second}, {0, 4 * time.Second}, {0, 8 * time.Second}},
		"python": {{10 * time.Second, 10 * time.Second}, {10 * time.Second, 10 * time.Second}},
	}
	for name, want := range bounds {
		p := Profiles[name]
		r := seeded()
		for i, b := range want {
			n := i + 1
			if name == "node" && i == len(want)-1 {
				n = 20
			}
			got := p.Backoff(n, r)
			if got < b[0] || got > b[1] {
				t.Errorf("%s retry %d: %s, want within [%s, %s]", name, n, got, b[0], b[1])
			}
		}
	}
	for _, name := range ProfileNames() {
		for n := 1; n < 200; n++ {
			if d := Profiles[name].Backoff(n, seeded()); d < 0 || (name != "c" && d > 10*time.Second) {
				t.Errorf("%s retry %d: %s out of range", name, n, d)
			}
		}
	}
	if d := Profiles["node"].Backoff(100, seeded()); d != 10*time.Second {
		t.Errorf("node retry 100: %s, want the 10 s cap", d)
	}
}

// The same seed gives the same sequence; jitter is really drawn.
func TestBackoffSeededDeterminism(t *testing.T) {
	for _, name := range []string{"node", "csharp", "java", "c"} {
		seq := func(seed uint64) []time.Duration {
			r := rand.New(rand.NewPCG(seed, 7))
			var out []time.Duration
			for n := 1; n <= 8; n++ {
				out = append(out, Profiles[name].Backoff(n, r))
			}
			return out
		}
		a, b, c := seq(1), seq(1), seq(2)
		if !slices.Equal(a, b) {
			t.Errorf("%s: same seed, different sequences %v %v", name, a, b)
		}
		if slices.Equal(a, c) {
			t.Errorf("%s: no jitter: seeds 1 and 2 give %v", name, a)
		}
	}
}
