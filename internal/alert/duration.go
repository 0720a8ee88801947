package alert

import (
	"fmt"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/isodur"
)

// ParseDuration accepts Go durations (1s, 5m, 1h30m) and the ISO 8601
// durations Azure Monitor uses (PT1M, PT5M, PT1H, P1D, PT0.5S). Zero and
// negative durations are refused in both forms: every duration of a rules
// file is a period or a timeout, and a zero one would silently become its
// default (frequency "0s" ran as PT1M).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if s[0] == 'P' || s[0] == 'p' {
		return isodur.Parse(s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use e.g. 1s, 5m, 1h or PT5M", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: a duration must be positive", s)
	}
	return d, nil
}

// ISODuration formats d as Azure does in alert payloads (PT1M, PT1H30M).
func ISODuration(d time.Duration) string { return isodur.Format(d) }
