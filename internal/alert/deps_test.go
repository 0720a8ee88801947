package alert_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainDependencies: the alert engine owns its query and publish
// function types and never imports the metric store, the query engine,
// NATS, the API or the composition root (the app adapts them); of
// Tether's packages it uses only isodur and notify (stdlib only).
func TestDomainDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tether-hub/tether/internal/alert").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/tether-hub/tether/internal/",
		"github.com/nats-io/",
		"modernc.org/sqlite",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) && dep != "github.com/tether-hub/tether/internal/alert" && dep != "github.com/tether-hub/tether/internal/isodur" &&
				dep != "github.com/tether-hub/tether/internal/notify" {
				t.Errorf("internal/alert depends on %s", dep)
			}
		}
	}
}
