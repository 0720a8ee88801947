package main

import (
	"strings"
	"testing"
	"time"
)

// The sweep's summary names the highest sustained rate with the hub's and
// the driver's CPU there, and says which lower rate was not sustained.
func TestReportNamesHighestSustainedRate(t *testing.T) {
	ok := func(rate int) phase {
		return phase{rate: rate, achieved: float64(rate), drained: true, hubCores: 0.5, selfCores: 0.25, hubUsPerCycle: 400, selfUsPerCycle: 200}
	}
	lat := func(p99 time.Duration) phaseLat {
		return phaseLat{fromClose: dist{n: 100, p50: time.Millisecond, p99: p99, mx: p99}}
	}
	r := &report{
		phases: []phase{ok(1000), ok(2000), ok(5000), ok(10000)},
		lat:    []phaseLat{lat(2 * time.Millisecond), lat(80 * time.Millisecond), lat(40 * time.Millisecond), lat(3 * time.Second)},
	}
	r.phases[3].drained = false
	md := r.markdown()
	for _, want := range []string{
		"**Highest rate sustained with p99 ≤ 50 ms: 5000 events/s** (of the rates tried: 1000, 2000, 5000, 10000)",
		"the hub used 0.50 cores (400 µs per cycle) and eventlat's driver and receiver 0.25 cores (200 µs per cycle)",
		"lower rates **not** sustained in this run: 2000.",
		"**no**: p99 80.0 ms",
		"**no**: p99 3000 ms, not drained",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	r.badPosts = 1
	if md := r.markdown(); !strings.Contains(md, "No rate tried was sustained") {
		t.Error("a refused POST must fail every rate")
	}
}
