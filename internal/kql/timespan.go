package kql

import (
	"fmt"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/isodur"
)

// ParseTimespanParam reads the timespan of a query request: an ISO 8601
// duration ending now (PT1H, P7D, P1DT12H, P1W), a KQL timespan ending now
// (1h, 7d, 90m), or an ISO 8601 interval start/end or start/duration
// (RFC 3339 times).
func ParseTimespanParam(s string, now time.Time) (*TimeRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if a, b, ok := strings.Cut(s, "/"); ok {
		start, err := time.Parse(time.RFC3339Nano, a)
		if err != nil {
			return nil, fmt.Errorf("timespan %q: start is not an RFC 3339 time", s)
		}
		var end time.Time
		if d, ok := parseDuration(b); ok {
			end = start.Add(d)
		} else if end, err = time.Parse(time.RFC3339Nano, b); err != nil {
			return nil, fmt.Errorf("timespan %q: end is neither an RFC 3339 time nor an ISO 8601 duration", s)
		}
		if end.Before(start) {
			return nil, fmt.Errorf("timespan %q ends before it starts", s)
		}
		return &TimeRange{Start: start.UTC(), End: end.UTC()}, nil
	}
	d, ok := parseDuration(s)
	if !ok || d <= 0 {
		return nil, fmt.Errorf("timespan %q: want a duration such as 1h, PT1H or P7D, or start/end", s)
	}
	return &TimeRange{Start: now.Add(-d).UTC(), End: now.UTC()}, nil
}

// parseDuration reads an ISO 8601 duration (isodur: weeks, days and
// smaller) or a KQL timespan literal such as 1h.
func parseDuration(s string) (time.Duration, bool) {
	if strings.HasPrefix(strings.ToUpper(s), "P") {
		d, err := isodur.Parse(s)
		return d, err == nil
	}
	if d, ok := ParseTimespan(s); ok && !strings.Contains(s, ":") {
		return d, true
	}
	return 0, false
}
