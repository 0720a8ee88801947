package metrics

import (
	"errors"
	"testing"
	"time"
)

func TestParseISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT1M": time.Minute, "PT1S": time.Second, "pt5m": 5 * time.Minute, "PT1H": time.Hour, "P1D": 24 * time.Hour,
		"P1W": 7 * 24 * time.Hour, "P1DT12H": 36 * time.Hour, "PT1H30M": 90 * time.Minute, "PT0.5S": 500 * time.Millisecond,
	} {
		got, err := ParseISODuration(in)
		if err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParseISODuration(FormatISODuration(got)); err != nil || back != got {
			t.Errorf("%s: format %q does not parse back: %v %v", in, FormatISODuration(got), back, err)
		}
	}
	for _, in := range []string{"", "P", "PT", "1M", "P1M", "P1Y", "PT1X", "PT-1S", "PT0S", "PT1M1M", "P1.5D", "PTT1S", "P1DT", "PT1e3S"} {
		if _, err := ParseISODuration(in); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%q: err %v, want ErrInvalidQuery", in, err)
		}
	}
}

func TestParseTimespan(t *testing.T) {
	now := t0
	for in, want := range map[string][2]time.Time{
		"PT1H": {now.Add(-time.Hour), now},
		"2026-11-26T11:00:00Z/2026-11-26T11:30:00Z": {now.Add(-time.Hour), now.Add(-30 * time.Minute)},
		"2026-11-26T11:00:00Z/PT15M":                {now.Add(-time.Hour), now.Add(-45 * time.Minute)},
	} {
		from, to, err := ParseTimespan(in, now)
		if err != nil || !from.Equal(want[0]) || !to.Equal(want[1]) {
			t.Errorf("%s: %v %v %v", in, from, to, err)
		}
	}
	for _, in := range []string{"", "yesterday", "2026-11-26T11:00:00Z/2026-11-26T10:00:00Z", "2026-11-26/PT1H", "2026-11-26T11:00:00Z/soon"} {
		if _, _, err := ParseTimespan(in, now); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%q: err %v", in, err)
		}
	}
}

func FuzzParseISODuration(f *testing.F) {
	for _, s := range []string{"PT1M", "P1DT12H", "PT0.5S", "P1W", "PT", "P1Y", "PT1.5.5S", "PT99999999999H"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseISODuration(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("%q: error not ErrInvalidQuery: %v", s, err)
			}
			return
		}
		if d <= 0 { // round trips: isodur's FuzzParse
			t.Fatalf("%q: non-positive %v", s, d)
		}
	})
}

func FuzzParseTimespan(f *testing.F) {
	for _, s := range []string{"PT1H", "2026-11-26T11:00:00Z/2026-11-26T11:30:00Z", "2026-11-26T11:00:00Z/PT15M", "/", "a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		from, to, err := ParseTimespan(s, t0)
		if err != nil {
			if !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if !from.Before(to) {
			t.Fatalf("%q: empty span %v/%v", s, from, to)
		}
	})
}
