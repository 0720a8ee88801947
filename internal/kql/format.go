package kql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tether-hub/tether/internal/kql/syntax"
)

// The text forms and parsers of KQL values, shared by the compiler
// (constants) and the dialects (functions the database calls per row).

// FormatReal is tostring(real).
func FormatReal(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// FormatDatetime is tostring(datetime): ISO 8601 UTC.
func FormatDatetime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// FormatTimespan is tostring(timespan): [-][d.]hh:mm:ss[.fffffff].
func FormatTimespan(d time.Duration) string {
	var b strings.Builder
	u := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		u = uint64(-d)
	}
	days := u / uint64(24*time.Hour)
	u -= days * uint64(24*time.Hour)
	if days > 0 {
		fmt.Fprintf(&b, "%d.", days)
	}
	h := u / uint64(time.Hour)
	u -= h * uint64(time.Hour)
	m := u / uint64(time.Minute)
	u -= m * uint64(time.Minute)
	s := u / uint64(time.Second)
	u -= s * uint64(time.Second)
	fmt.Fprintf(&b, "%02d:%02d:%02d", h, m, s)
	if ticks := u / 100; ticks > 0 {
		fmt.Fprintf(&b, ".%07d", ticks)
	}
	return b.String()
}

// ParseLong is tolong(string); false when s is not a number.
func ParseLong(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f), true
	}
	return 0, false
}

// ParseReal is todouble(string).
func ParseReal(s string) (float64, bool) {
	switch s = strings.TrimSpace(s); s {
	case "NaN":
		return math.NaN(), true
	case "Infinity", "+Infinity":
		return math.Inf(1), true
	case "-Infinity":
		return math.Inf(-1), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// ParseBool is tobool(string): true/false in any case, or 1/0.
func ParseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// ParseTimespan is totimespan(string): a literal such as 5m or
// [-][d.]hh:mm[:ss[.fffffff]].
func ParseTimespan(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if e, err := syntax.ParseExpr(s); err == nil {
		if ts, ok := e.(*syntax.TimespanLit); ok {
			return ts.Value, true
		}
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var days int64
	if i := strings.IndexByte(s, '.'); i >= 0 && i < strings.IndexByte(s, ':') {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > 106751 {
			return 0, false
		}
		days, s = n, s[i+1:]
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	var frac int64
	if len(parts) == 3 {
		if i := strings.IndexByte(parts[2], '.'); i >= 0 {
			f := parts[2][i+1:]
			if len(f) == 0 || len(f) > 9 {
				return 0, false
			}
			n, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return 0, false
			}
			frac = int64(n) * int64(math.Pow10(9-len(f)))
			parts[2] = parts[2][:i]
		}
	}
	var hms [3]int64
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil || len(p) > 2 || (i > 0 && n > 59) || (i == 0 && n > 23) {
			return 0, false
		}
		hms[i] = int64(n)
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(hms[0])*time.Hour + time.Duration(hms[1])*time.Minute +
		time.Duration(hms[2])*time.Second + time.Duration(frac)
	if neg {
		d = -d
	}
	return d, true
}

// HasTerm is KQL's has family: term occurs in s with no letter or digit
// touching it (on the left unless suffixOnly, on the right unless
// prefixOnly). Case-insensitive unless cs.
func HasTerm(s, term string, cs, prefixOnly, suffixOnly bool) bool {
	if term == "" {
		return true
	}
	if !cs {
		s, term = strings.ToLower(s), strings.ToLower(term)
	}
	first, _ := utf8.DecodeRuneInString(term)
	last, _ := utf8.DecodeLastRuneInString(term)
	for from := 0; from <= len(s)-len(term); {
		i := strings.Index(s[from:], term)
		if i < 0 {
			return false
		}
		i += from
		okLeft, okRight := true, true
		if !suffixOnly && isAlnum(first) && i > 0 {
			r, _ := utf8.DecodeLastRuneInString(s[:i])
			okLeft = !isAlnum(r)
		}
		if !prefixOnly && isAlnum(last) && i+len(term) < len(s) {
			r, _ := utf8.DecodeRuneInString(s[i+len(term):])
			okRight = !isAlnum(r)
		}
		if okLeft && okRight {
			return true
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		from = i + size
	}
	return false
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// FormatDatetimeAs is format_datetime(t, format) with KQL's specifiers
// (yyyy, yy, MM, M, dd, d, HH, H, hh, h, mm, m, ss, s, f…fffffff, F…,
// tt) and separators (space / - : , . _ [ ]).
func FormatDatetimeAs(t time.Time, format string) (string, error) {
	t = t.UTC()
	var b strings.Builder
	for i := 0; i < len(format); {
		ch := format[i]
		j := i
		for j < len(format) && format[j] == ch {
			j++
		}
		n := j - i
		if strings.IndexByte(" /-:,._[]", ch) >= 0 {
			b.WriteString(format[i:j])
			i = j
			continue
		}
		var s string
		switch {
		case ch == 'y' && n == 4:
			s = fmt.Sprintf("%04d", t.Year())
		case ch == 'y' && n == 2:
			s = fmt.Sprintf("%02d", t.Year()%100)
		case ch == 'y' && n == 1:
			s = strconv.Itoa(t.Year() % 100)
		case ch == 'M' && n <= 2:
			s = pad(int(t.Month()), n)
		case ch == 'd' && n <= 2:
			s = pad(t.Day(), n)
		case ch == 'H' && n <= 2:
			s = pad(t.Hour(), n)
		case ch == 'h' && n <= 2:
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			s = pad(h, n)
		case ch == 'm' && n <= 2:
			s = pad(t.Minute(), n)
		case ch == 's' && n <= 2:
			s = pad(t.Second(), n)
		case (ch == 'f' || ch == 'F') && n <= 9:
			s = fmt.Sprintf("%09d", t.Nanosecond())[:n]
			if ch == 'F' {
				s = strings.TrimRight(s, "0")
			}
		case ch == 't' && n == 2:
			s = "AM"
			if t.Hour() >= 12 {
				s = "PM"
			}
		default:
			return "", fmt.Errorf("format_datetime: unsupported format specifier '%s'", format[i:j])
		}
		b.WriteString(s)
		i = j
	}
	return b.String(), nil
}

func pad(v, width int) string {
	if width == 2 {
		return fmt.Sprintf("%02d", v)
	}
	return strconv.Itoa(v)
}
