// Package isodur reads and writes the ISO 8601 durations Azure Monitor
// uses for intervals, windows and frequencies (PT1M, PT5M, PT1H, P1D).
// The metrics API and the alert rules share it.
package isodur

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Parse parses the ISO 8601 durations Azure Monitor uses
// (PT1M, PT5M, PT1H, P1D, PT1.5S, P1W, P1DT12H): days, weeks, hours,
// minutes and (fractional) seconds; years and months have no fixed
// length and are refused. The result is positive.
func Parse(s string) (time.Duration, error) {
	orig := s
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("duration %q: %s (ISO 8601, e.g. PT1M, PT30S, PT1H, P1D)", orig, why)
	}
	s = strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return bad("must start with P and name at least one unit")
	}
	s = s[1:]
	var total float64
	inTime, seen := false, ""
	for s != "" {
		if s[0] == 'T' {
			if inTime {
				return bad("T appears twice")
			}
			inTime, s = true, s[1:]
			if s == "" {
				return bad("nothing after T")
			}
			continue
		}
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 || i == len(s) {
			return bad("expected a number followed by a unit")
		}
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil || n < 0 || n > 1e9 {
			return bad("bad number " + strconv.Quote(s[:i]))
		}
		unit := s[i]
		s = s[i+1:]
		key := string(unit)
		if inTime {
			key = "T" + key
		}
		if strings.Contains(seen, key+",") {
			return bad("unit " + string(unit) + " given twice")
		}
		seen += key + ","
		if n != float64(int64(n)) && !(inTime && unit == 'S') {
			return bad("only seconds may have a fraction")
		}
		var unitSec float64
		switch {
		case !inTime && unit == 'W':
			unitSec = 7 * 86400
		case !inTime && unit == 'D':
			unitSec = 86400
		case !inTime && (unit == 'Y' || unit == 'M'):
			return bad("years and months have no fixed length; use days")
		case inTime && unit == 'H':
			unitSec = 3600
		case inTime && unit == 'M':
			unitSec = 60
		case inTime && unit == 'S':
			unitSec = 1
		default:
			return bad("unknown unit " + strconv.Quote(string(unit)))
		}
		total += n * unitSec
	}
	if total <= 0 {
		return bad("must be positive")
	}
	if total > 10*365*86400 {
		return bad("longer than ten years")
	}
	return time.Duration(total * float64(time.Second)), nil
}

// Format writes d as ISO 8601 (PT1M, PT1H30M, P1D, PT0.5S).
func Format(d time.Duration) string {
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
		b.WriteString(strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S")
	}
	return b.String()
}
