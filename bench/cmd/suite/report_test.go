package main

import (
	"strings"
	"testing"

	"github.com/tether-hub/tether/bench/internal/stormrun"
)

// A storm row with repetitions shows each broker's median [min–max] and
// the ratio of the medians with the range of the per-repetition ratios.
func TestStormRowsWithRepetitions(t *testing.T) {
	res := func(us float64) *stormrun.Result {
		return &stormrun.Result{Connected: 5000, ServerCPUUntilIdleUsPerConn: us}
	}
	r := &result{storms: map[string]map[string][]*stormrun.Result{
		"tcp": {"tether": {res(110), res(120), res(150)}, "bare": {res(100), res(60), res(100)}},
	}}
	var b strings.Builder
	r.stormSection(&b, options{brokers: []string{"bare", "tether"}, reps: 3})
	var row string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, "TCP: broker CPU per connect, until idle") {
			row = l
		}
	}
	// medians 120 and 100; per-repetition ratios 1.10, 2.00, 1.50
	want := "| 120 [110–150] | 100 [60.0–100] | 1.20 [1.10–2.00] |"
	if !strings.HasSuffix(row, want) {
		t.Errorf("row %q, want it to end %q", row, want)
	}
	if !strings.Contains(b.String(), "3 per broker and transport") {
		t.Error("the report does not say how many repetitions ran")
	}
}
