package metrics

import (
	"fmt"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/isodur"
)

// ParseISODuration is isodur.Parse with errors that match ErrInvalidQuery.
func ParseISODuration(s string) (time.Duration, error) {
	d, err := isodur.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	return d, nil
}

// FormatISODuration writes d as ISO 8601 (isodur.Format).
func FormatISODuration(d time.Duration) string { return isodur.Format(d) }

// ParseTimespan parses Azure Monitor's timespan: "start/end",
// "start/duration" or a duration ending at now (times RFC 3339).
func ParseTimespan(s string, now time.Time) (from, to time.Time, err error) {
	bad := func(why string) (time.Time, time.Time, error) {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: timespan %q: %s (start/end in RFC 3339, start/PT1H, or PT1H for the last hour)", ErrInvalidQuery, s, why)
	}
	a, b, two := strings.Cut(strings.TrimSpace(s), "/")
	if !two {
		d, err := ParseISODuration(a)
		if err != nil {
			return bad("not a duration")
		}
		return now.Add(-d), now, nil
	}
	from, err = time.Parse(time.RFC3339Nano, a)
	if err != nil {
		return bad("bad start time")
	}
	if strings.HasPrefix(strings.ToUpper(b), "P") {
		d, err := ParseISODuration(b)
		if err != nil {
			return bad("bad duration after the start")
		}
		return from, from.Add(d), nil
	}
	to, err = time.Parse(time.RFC3339Nano, b)
	if err != nil {
		return bad("bad end time")
	}
	if !from.Before(to) {
		return bad("the start must be before the end")
	}
	return from, to, nil
}
