package kql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ParseTimespanParam reads the timespan of a query request: an ISO 8601
// duration ending now (PT1H, P7D, P1DT12H), a KQL timespan ending now
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

var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseDuration reads an ISO 8601 duration (days and smaller) or a KQL
// timespan literal.
func parseDuration(s string) (time.Duration, bool) {
	if m := isoDuration.FindStringSubmatch(strings.ToUpper(s)); m != nil && s != "P" && !strings.HasSuffix(strings.ToUpper(s), "T") {
		var d float64
		for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
			if m[i+1] != "" {
				v, err := strconv.ParseFloat(m[i+1], 64)
				if err != nil {
					return 0, false
				}
				d += v * float64(unit)
			}
		}
		if d > float64(1<<62) {
			return 0, false
		}
		return time.Duration(d), true
	}
	if d, ok := ParseTimespan(s); ok && !strings.Contains(s, ":") {
		return d, true
	}
	return 0, false
}
