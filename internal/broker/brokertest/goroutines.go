// Package brokertest holds test support for code that runs the session
// layer (internal/broker): its own tests and the hub's.
package brokertest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// CheckNoSessionGoroutines fails t if a session's or a listener's
// goroutine is still running 5 s after the broker's Stop returned. Call it
// only when no other broker of the test binary is running.
func CheckNoSessionGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "internal/broker.(*session)") || strings.Contains(g, "internal/broker.(*Broker).accept") ||
				strings.Contains(g, "internal/broker.(*connectors).worker") || strings.Contains(g, "internal/broker.(*idlePoller)") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d broker goroutines outlived Stop:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
