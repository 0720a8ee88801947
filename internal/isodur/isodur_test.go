package isodur

import (
	"testing"
	"time"
)

func TestParseAndFormat(t *testing.T) {
	for _, c := range []struct {
		in     string
		d      time.Duration
		format string
	}{
		{"PT1S", time.Second, "PT1S"}, {"PT90S", 90 * time.Second, "PT1M30S"}, {"pt5m", 5 * time.Minute, "PT5M"},
		{"P2W", 14 * 24 * time.Hour, "P14D"}, {"P1DT0.25S", 24*time.Hour + 250*time.Millisecond, "P1DT0.25S"},
		{"PT24H", 24 * time.Hour, "P1D"}, {" PT1H ", time.Hour, "PT1H"},
	} {
		d, err := Parse(c.in)
		if err != nil || d != c.d || Format(d) != c.format {
			t.Errorf("%q: %v %v, format %q", c.in, d, err, Format(d))
		}
	}
	for _, in := range []string{"P0D", "PT0.0S", "P1H", "PTD", "P3650D1D", "P4000D", "PT.S", "P-1D"} {
		if d, err := Parse(in); err == nil {
			t.Errorf("%q accepted as %v", in, d)
		}
	}
	if Format(0) != "PT0S" || Format(-time.Second) != "PT0S" {
		t.Error("non-positive durations format as PT0S")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"PT1M", "P1W2DT3H4M5.5S", "PT", "P1M", "PT1S1S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			return
		}
		if d <= 0 {
			t.Fatalf("%q → %v", s, d)
		}
		if d%time.Millisecond == 0 {
			if back, err := Parse(Format(d)); err != nil || back != d {
				t.Fatalf("%q → %v → %q → %v %v", s, d, Format(d), back, err)
			}
		}
	})
}
