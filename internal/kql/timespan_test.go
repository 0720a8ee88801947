package kql

import (
	"testing"
	"time"
)

func TestParseTimespanParam(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in         string
		start, end time.Time
		err        bool
	}{
		{in: "PT1H", start: now.Add(-time.Hour), end: now},
		{in: "P7D", start: now.Add(-7 * 24 * time.Hour), end: now},
		{in: "P1DT12H30M", start: now.Add(-(36*time.Hour + 30*time.Minute)), end: now},
		{in: "1h", start: now.Add(-time.Hour), end: now},
		{in: "90m", start: now.Add(-90 * time.Minute), end: now},
		{in: "2026-03-01T00:00:00Z/2026-03-01T06:00:00Z", start: now.Add(-12 * time.Hour), end: now.Add(-6 * time.Hour)},
		{in: "2026-03-01T00:00:00Z/PT2H", start: now.Add(-12 * time.Hour), end: now.Add(-10 * time.Hour)},
		{in: "P", err: true}, {in: "PT", err: true}, {in: "yesterday", err: true}, {in: "-1h", err: true},
		{in: "2026-03-01T06:00:00Z/2026-03-01T00:00:00Z", err: true}, {in: "x/PT1H", err: true}, {in: "00:10:00", err: true},
	} {
		tr, err := ParseTimespanParam(tc.in, now)
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || !tr.Start.Equal(tc.start) || !tr.End.Equal(tc.end) {
			t.Errorf("%q = %+v, %v; want %s/%s", tc.in, tr, err, tc.start, tc.end)
		}
	}
}
