package probe_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: the probe runs on devices from the same binary, and
// needs nothing of the hub: no broker, registry store, journal, API or
// composition root (its tests start a hub; the package does not).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tether-hub/tether/internal/probe").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range []string{"internal/app", "internal/api", "internal/broker", "internal/registry", "internal/journal", "internal/connlog", "github.com/nats-io/"} {
			if strings.Contains(dep, f) {
				t.Errorf("internal/probe depends on %s", dep)
			}
		}
	}
}
