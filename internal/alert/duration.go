package alert

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration accepts Go durations (1s, 5m, 1h30m) and the ISO 8601
// durations Azure Monitor uses (PT1M, PT5M, PT1H, P1D, PT0.5S). Negative
// durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if s[0] == 'P' || s[0] == 'p' {
		return parseISODuration(s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use e.g. 1s, 5m, 1h or PT5M", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q: a duration cannot be negative", s)
	}
	return d, nil
}

// parseISODuration reads P[nD][T[nH][nM][nS]] (no years, months or weeks:
// their length varies).
func parseISODuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not an ISO 8601 duration: use e.g. PT1M, PT30S, PT1H, P1D", s)
	rest := strings.ToUpper(s[1:])
	var total time.Duration
	inTime, any := false, false
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, bad
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return 0, bad
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, bad
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil || n > 1e6 {
			return 0, bad
		}
		var unit time.Duration
		switch u := rest[i]; {
		case !inTime && u == 'D':
			unit = 24 * time.Hour
		case inTime && u == 'H':
			unit = time.Hour
		case inTime && u == 'M':
			unit = time.Minute
		case inTime && u == 'S':
			unit = time.Second
		default:
			return 0, bad
		}
		total += time.Duration(n * float64(unit))
		any = true
		rest = rest[i+1:]
	}
	if !any {
		return 0, bad
	}
	return total, nil
}

// ISODuration formats d as Azure does in alert payloads (PT1M, PT5M,
// PT1H30M, PT1S, P1D).
func ISODuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("P")
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d == 0 {
		return b.String()
	}
	b.WriteString("T")
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if d > 0 {
		b.WriteString(strconv.FormatFloat(d.Seconds(), 'f', -1, 64))
		b.WriteString("S")
	}
	return b.String()
}
