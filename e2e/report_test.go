package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// phaseLogger returns a t.Logf that prefixes each line with the seconds
// since the call: a test's timeline in its log.
func phaseLogger(t *testing.T) func(format string, a ...any) {
	t0 := time.Now()
	return func(format string, a ...any) {
		t.Helper()
		t.Logf("%6.1fs  %s", time.Since(t0).Seconds(), fmt.Sprintf(format, a...))
	}
}

// firstFew sorts xs and joins the first n, saying how many there are in
// all when there are more: examples for a failure message.
func firstFew(xs []string, n int) string {
	slices.Sort(xs)
	if len(xs) > n {
		return strings.Join(xs[:n], "; ") + fmt.Sprintf("; … (%d in all)", len(xs))
	}
	return strings.Join(xs, "; ")
}
