// Package benchfmt formats figures for the benchmarks' markdown reports.
package benchfmt

import "fmt"

// Num prints v with 3 significant-ish digits: 1234, 56.7, 8.90.
func Num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// Int prints n with thousands separated by commas: 19,000.
func Int(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + Int(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
