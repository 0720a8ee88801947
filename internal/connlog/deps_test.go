package connlog_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainDependencies holds the layering rule of DESIGN.md: the domain
// package owns LogStore and never imports an adapter, the API, the web UI
// or the composition root.
func TestDomainDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tether-hub/tether/internal/connlog").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/tether-hub/tether/internal/connlog/",
		"github.com/tether-hub/tether/internal/api",
		"github.com/tether-hub/tether/internal/web",
		"github.com/tether-hub/tether/internal/app",
		"modernc.org/sqlite",
		"github.com/ClickHouse/",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("internal/connlog depends on %s", dep)
			}
		}
	}
}
