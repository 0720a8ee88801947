package kql_test

import (
	"context"
	"strings"
	"testing"
	"time"

	logsqlite "github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
	"github.com/tether-hub/tether/internal/kql/syntax"
)

// SeedQueries are the seed's three Kusto queries, verbatim.
var seedQueries = map[string]string{
	"errors": `AzureDiagnostics
| where ( ResourceType == "IOTHUBS" and Category == "Connections" and Level == "Error")`,
	"device": `AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend DeviceId = tostring(parse_json(properties_s).deviceId)
| where DeviceId == "test-device"`,
	"distinct": `AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend parsed_json = parse_json(properties_s)
| extend SDKVersion = tostring(parsed_json.sdkVersion) , DeviceId = tostring(parsed_json.deviceId) , Protocol = tostring(parsed_json.protocol)
| distinct TimeGenerated, OperationName, Level, ResultType, ResultDescription, DeviceId, Protocol, SDKVersion`,
}

// TestSeedQueryPlans: the seed queries compile to one SELECT on the table
// that SQLite answers from an index, reads no JSON, and binds every
// literal.
func TestSeedQueryPlans(t *testing.T) {
	store, err := logsqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	wantIndex := map[string]string{
		"errors":   "AzureDiagnostics_Category_Time",
		"device":   "AzureDiagnostics_DeviceId_Time",
		"distinct": "AzureDiagnostics_Category_Time",
	}
	for name, q := range seedQueries {
		c, err := kql.Compile(q, kql.AzureDiagnostics(), kqlsqlite.Dialect{}, kql.CompileOptions{
			Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), DefaultTimespan: 24 * time.Hour, MaxRows: 10000,
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, bad := range []string{"json", "SELECT (", "IOTHUBS", "Connections", "test-device", "kql_"} {
			if strings.Contains(c.SQL, bad) {
				t.Errorf("%s: SQL contains %q:\n%s", name, bad, c.SQL)
			}
		}
		rows, err := store.DB().Query("EXPLAIN QUERY PLAN "+c.SQL, c.Args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, c.SQL)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "USING INDEX "+wantIndex[name]) || !strings.Contains(p, "TimeGenerated>? AND TimeGenerated<?") {
			t.Errorf("%s: plan %q does not search %s with the time range\n%s", name, p, wantIndex[name], c.SQL)
		}
		t.Logf("%s:\n%s\nplan: %s", name, c.SQL, p)
	}
}

// TestLiteralsAreBound: string, number and name literals never appear in
// the SQL text, only in the arguments.
func TestLiteralsAreBound(t *testing.T) {
	evil := []string{`x' OR '1'='1`, `"; DROP TABLE AzureDiagnostics; --`, `%_\`, `?99 --`, `$.a`}
	for _, s := range evil {
		for _, q := range []string{
			`AzureDiagnostics | where DeviceId == ` + syntaxQuote(s),
			`AzureDiagnostics | where DeviceId has ` + syntaxQuote(s) + ` or DeviceId contains ` + syntaxQuote(s),
			`AzureDiagnostics | extend p = parse_json(properties_s) | where tostring(p[` + syntaxQuote(s) + `]) startswith ` + syntaxQuote(s),
			`AzureDiagnostics | summarize count() by DeviceId | where DeviceId in~ (` + syntaxQuote(s) + `)`,
		} {
			if strings.Contains(q, `p["\"`) {
				continue // SQLite JSON paths cannot name such a key: a positioned error (errors.txt)
			}
			c, err := kql.Compile(q, kql.AzureDiagnostics(), kqlsqlite.Dialect{}, kql.CompileOptions{Now: time.Now()})
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if strings.Contains(c.SQL, s) {
				t.Errorf("literal %q spliced into SQL:\n%s", s, c.SQL)
			}
			found := false
			for _, a := range c.Args {
				if as, ok := a.(string); ok && strings.Contains(as, strings.Trim(s, "$.")) {
					found = true
				}
			}
			if !found {
				t.Errorf("literal %q not among the arguments %v", s, c.Args)
			}
		}
	}
}

func syntaxQuote(s string) string { return syntax.Quote(s) }
