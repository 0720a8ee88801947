package app_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/metrics"
)

type dashboard struct {
	Title  string `json:"title"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var metricRef = regexp.MustCompile(`\btether_[a-z0-9_]+`)

// The Grafana dashboard's queries name only metrics the hub exposes,
// every tether_ family is on it, and each query is valid PromQL (promtool
// checks them as recording rules, with Grafana's variables filled in).
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/tether-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	// The families: the catalog's Prometheus names (a test in package
	// metrics holds them to what the collector registers).
	var families []string
	for _, def := range metrics.Catalog {
		f, _, _ := strings.Cut(def.Prometheus, "{")
		if !slices.Contains(families, f) {
			families = append(families, f)
		}
	}
	exposed := func(name string) bool {
		for _, f := range families {
			if name == f || name == f+"_total" || name == f+"_bucket" || name == f+"_count" || name == f+"_sum" {
				return true
			}
		}
		return false
	}
	used := map[string]bool{}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
			for _, name := range metricRef.FindAllString(tg.Expr, -1) {
				if !exposed(name) {
					t.Errorf("panel %q uses %s, which /metrics does not expose (%v)", p.Title, name, families)
				}
				for _, f := range families {
					if strings.HasPrefix(name, f) {
						used[f] = true
					}
				}
			}
		}
	}
	for _, f := range families {
		if !used[f] {
			t.Errorf("no dashboard panel shows %s", f)
		}
	}
	if len(families) < 9 {
		t.Errorf("only %d tether_ families exposed: %v", len(families), families)
	}

	if _, err := lookPromtool(); err != nil && os.Getenv("TETHER_REQUIRE_PROMTOOL") != "1" {
		return // syntax check needs promtool
	}
	promtool(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		e = strings.NewReplacer("$__rate_interval", "1m", "$job", ".*", "$instance", ".*").Replace(e)
		q, _ := json.Marshal(e)
		fmt.Fprintf(&rules, "      - record: dashboard:q%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := runPromtool(t, "", "check", "rules", path); !strings.Contains(out, "SUCCESS") {
		t.Errorf("dashboard queries: %s", out)
	}
}
