package sim

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Quantiles of the histogram stay within its 2 % bucket width of the
// exact ones, survive a JSON round trip (worker → parent) and merging.
func TestLatencyQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var a, b Latency
	var all []time.Duration
	for i := range 20000 {
		d := time.Duration(r.ExpFloat64() * float64(3*time.Millisecond))
		all = append(all, d)
		if i%2 == 0 {
			a.Add(d)
		} else {
			b.Add(d)
		}
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var b2 Latency
	if err := json.Unmarshal(raw, &b2); err != nil {
		t.Fatal(err)
	}
	a.Merge(b2)
	slices.Sort(all)
	if a.N != int64(len(all)) || a.MaxNs != int64(all[len(all)-1]) {
		t.Fatalf("n %d max %d; want %d %d", a.N, a.MaxNs, len(all), all[len(all)-1])
	}
	for _, q := range []float64{0.5, 0.95, 0.99, 1} {
		exact := all[int(q*float64(len(all)))-1]
		got := a.Quantile(q)
		if got < exact || float64(got) > float64(exact)*1.021+float64(time.Microsecond) {
			t.Errorf("q%.2f = %v; exact %v", q, got, exact)
		}
	}
	var empty Latency
	if empty.Quantile(0.5) != 0 || empty.Summary().Count != 0 {
		t.Errorf("empty histogram: %+v", empty.Summary())
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"100/s": 100, "30/min": 0.5, "7200/h": 2, "2.5": 2.5, "0": 0, " 60 / m ": 1} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1/s", "5/fortnight", "NaN", "1/s/s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
	for _, r := range []float64{100, 0.5, 1} {
		if back, err := ParseRate(FormatRate(r)); err != nil || back != r {
			t.Errorf("FormatRate(%v) = %q does not parse back", r, FormatRate(r))
		}
	}
}
