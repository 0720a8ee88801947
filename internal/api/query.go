package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// checkParams rejects query parameters outside allowed, so a typo
// ("devcie=") is an error rather than a silently unfiltered answer.
func checkParams(q url.Values, allowed ...string) error {
	for k := range q {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("unknown query parameter %q (known: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// parseTimeArg reads an absolute RFC 3339 time or a duration back from now
// ("90s", "15m", "1h30m", "7d"). Empty gives the zero time.
func parseTimeArg(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := parseAgo(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is neither a duration (90s, 15m, 1h, 7d) nor an RFC 3339 time (2026-01-02T15:04:05Z)", name, v)
	}
	return now.Add(-d), nil
}

// parseAgo is time.ParseDuration plus a whole-days form ("7d"); negative
// durations are refused.
func parseAgo(v string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("bad day count")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, err
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration")
	}
	return d, nil
}
