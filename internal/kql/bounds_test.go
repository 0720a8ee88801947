package kql_test

import (
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
)

// Compiled.Bounds: the timespan (or the default) narrowed by the query's
// own conjuncts on the table's time column; nothing else narrows it (a
// column that only has the name gets the default timespan).
func TestBounds(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	zero := time.Time{}
	for _, c := range []struct {
		q      string
		lo, hi time.Time
	}{
		{"AzureDiagnostics", now.Add(-day), now},
		{"AzureDiagnostics | where TimeGenerated > ago(1h)", now.Add(-time.Hour), zero},
		{"AzureDiagnostics | where TimeGenerated between (ago(2h) .. ago(1h))", zero, zero},
		{"AzureDiagnostics | where Level == 'Error' and (TimeGenerated >= datetime(2026-02-01) and datetime(2026-02-03) > TimeGenerated)",
			time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC)},
		{"AzureDiagnostics | where TimeGenerated > ago(1h) or Level == 'Error'", zero, zero},
		{"AzureDiagnostics | where not(TimeGenerated > ago(1h))", zero, zero},
		{"AzureDiagnostics | extend TimeGenerated = now() | where TimeGenerated > ago(1h)", now.Add(-day), now},
		{"AzureDiagnostics | summarize max(TimeGenerated) by DeviceId | where max_TimeGenerated > ago(1h)", now.Add(-day), now},
		{"AzureDiagnostics | where TimeGenerated > ago(1h) | where TimeGenerated > ago(30m)", now.Add(-30 * time.Minute), zero},
	} {
		c2, err := kql.Compile(c.q, kql.AzureDiagnostics(), kqlsqlite.Dialect{}, kql.CompileOptions{Now: now, DefaultTimespan: day})
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		if !c2.Bounds.Start.Equal(c.lo) || !c2.Bounds.End.Equal(c.hi) {
			t.Errorf("%s: bounds %v … %v, want %v … %v", c.q, c2.Bounds.Start, c2.Bounds.End, c.lo, c.hi)
		}
	}
}
