package events_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainDependencies holds the layering rule of DESIGN.md: the domain
// package owns SubscriptionStore and imports no adapter (its own kvstore,
// NATS), nor the API, web UI or composition root.
func TestDomainDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tether-hub/tether/internal/events").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/tether-hub/tether/internal/events/",
		"github.com/tether-hub/tether/internal/api",
		"github.com/tether-hub/tether/internal/web",
		"github.com/tether-hub/tether/internal/app",
		"github.com/tether-hub/tether/internal/journal",
		"github.com/tether-hub/tether/internal/connlog",
		"github.com/nats-io/",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("internal/events depends on %s", dep)
			}
		}
	}
}
