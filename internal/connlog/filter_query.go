package connlog

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits of a Filter built from a query.
const (
	DefaultQueryLimit = 100
	MaxQueryLimit     = 10000
)

// Query encodes f as the query of GET /api/v1/logs:
// device, category, level, since, until (RFC 3339, nanoseconds, UTC) and
// limit. FilterFromQuery reads it back.
func (f Filter) Query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("device", f.DeviceID)
	set("category", f.Category)
	set("level", f.Level)
	set("since", formatTime(f.Since))
	set("until", formatTime(f.Until))
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// FilterFromQuery parses the query of GET /api/v1/logs (see Filter.Query).
// since and until are RFC 3339 times or ages relative to now ("90s",
// "15m", "1h", "7d"); category and level are matched case-insensitively
// against the known values ("error" → "Error"); limit defaults to
// DefaultQueryLimit and is capped at MaxQueryLimit. All problems are
// reported together.
func FilterFromQuery(q url.Values, now time.Time) (Filter, error) {
	var f Filter
	var errs []error
	f.DeviceID = q.Get("device")
	if v := q.Get("category"); v != "" {
		c, err := ParseCategory(v)
		errs = append(errs, err)
		f.Category = c
	}
	if v := q.Get("level"); v != "" {
		l, err := ParseLevel(v)
		errs = append(errs, err)
		f.Level = l
	}
	var err error
	if v := q.Get("since"); v != "" {
		f.Since, err = ParseTimeArg(v, now)
		errs = append(errs, fieldErr("since", err))
	}
	if v := q.Get("until"); v != "" {
		f.Until, err = ParseTimeArg(v, now)
		errs = append(errs, fieldErr("until", err))
	}
	f.Limit = DefaultQueryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("limit %q: want a positive integer", v))
		} else {
			f.Limit = min(n, MaxQueryLimit)
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		errs = append(errs, fmt.Errorf("since (%s) is not before until (%s)", formatTime(f.Since), formatTime(f.Until)))
	}
	return f, errors.Join(errs...)
}

func fieldErr(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// ParseCategory matches s case-insensitively against the categories.
func ParseCategory(s string) (string, error) {
	for _, c := range Categories {
		if strings.EqualFold(s, c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("category %q: want one of %s", s, strings.Join(Categories, ", "))
}

// ParseLevel matches s case-insensitively against the levels; "info"
// stands for Information.
func ParseLevel(s string) (string, error) {
	switch strings.ToLower(s) {
	case "information", "info":
		return LevelInformation, nil
	case "error":
		return LevelError, nil
	}
	return "", fmt.Errorf("level %q: want %s or %s", s, LevelInformation, LevelError)
}

// ParseTimeArg reads an RFC 3339 time, or an age before now: a Go duration
// ("90s", "1h30m") or a number of days ("7d").
func ParseTimeArg(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor an age like 15m, 1h or 7d", s)
}
