package delivery_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: the engine is an adapter of the events domain to
// JetStream and HTTP; it must not reach into the composition root, the API
// or the CLI.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tether-hub/tether/internal/events/delivery").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range []string{
			"github.com/tether-hub/tether/internal/app", "github.com/tether-hub/tether/internal/api",
			"github.com/tether-hub/tether/internal/web", "github.com/tether-hub/tether/cmd/",
			"github.com/tether-hub/tether/internal/connlog", "github.com/tether-hub/tether/internal/events/kvstore",
		} {
			if strings.HasPrefix(dep, f) {
				t.Errorf("internal/events/delivery depends on %s", dep)
			}
		}
	}
}
