package kql_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	logsqlite "github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
)

// Issue 17 item 1: what one query may build is bounded — strings, sets
// and rows by the store's value limit, columns by its column limit — and a
// query past a bound fails at once with LimitExceeded, leaving the store
// as it was.
func TestQueryMemoryBounds(t *testing.T) {
	ctx := context.Background()
	store, err := logsqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var recs []connlog.Record
	for i := range 40 {
		rs, err := loadLine(fmt.Sprintf("connect 2026-03-01T07:%02d:00Z dev-%d", i, i), i)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rs...)
	}
	if err := store.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	eng := &kql.Engine{DB: store, Table: kql.AzureDiagnostics(), Dialect: kqlsqlite.Dialect{}, Now: func() time.Time { return now }}
	ten := func(s string) string { return strings.TrimSuffix(strings.Repeat(s+", ", 10), ", ") }
	// properties_s is ~316 bytes here: b ~32 KB. The query goes on
	// to c (~316 KB) and d (~3 MB).
	chain := "AzureDiagnostics | extend a = strcat(" + ten("properties_s") + ") | extend b = strcat(" + ten("a") + ")"
	var many []string
	for i := range logsqlite.MaxReadColumns + 1 {
		many = append(many, fmt.Sprintf("x%d = %d", i, i))
	}
	for _, tc := range []struct{ name, query, want string }{
		{"strcat explosion", chain + " | extend c = strcat(" + ten("b") + ") | extend d = strcat(" + ten("c") + ") | summarize sum(strlen(d))", "larger than 256 KiB"},
		{"make_set of large strings", chain + " | summarize make_set(strcat(DeviceId, b))", "larger than 256 KiB"},
		{"make_set of large dynamic values", chain + " | summarize make_set(parse_json(strcat('[\"', DeviceId, b, '\"]')))", "larger than 256 KiB"},
		{"too many columns", "AzureDiagnostics | project " + strings.Join(many, ", "), "more than 64 columns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := eng.Run(ctx, kql.Request{Query: tc.query})
			var qe *kql.Error
			if !errors.As(err, &qe) || qe.Code != kql.CodeLimit || !strings.Contains(qe.Msg, tc.want) {
				rows := 0
				if res != nil {
					rows = len(res.Rows)
				}
				t.Fatalf("got %d rows, error %v; want LimitExceeded %q", rows, err, tc.want)
			}
		})
	}
	// Queries within the bounds answer as before, on the same pool.
	longest, ids := 0, []string{}
	for _, r := range recs {
		longest = max(longest, len(r.Properties))
		ids = append(ids, `"`+r.DeviceID+`"`)
	}
	for q, want := range map[string]any{
		chain + " | summarize max(strlen(b))":                                               int64(100 * longest),
		"AzureDiagnostics | summarize s = make_set(DeviceId) | project strlen(tostring(s))": int64(len("[" + strings.Join(ids, ",") + "]")),
		"AzureDiagnostics | count":                                                          int64(40),
	} {
		res, err := eng.Run(ctx, kql.Request{Query: q})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if want != nil && res.Rows[0][0] != want {
			t.Errorf("%s = %v, want %v", q, res.Rows[0][0], want)
		}
	}
	more, err := loadLine("connect 2026-03-01T08:00:00Z dev-late", 99)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Append(ctx, more); err != nil {
		t.Fatalf("append after the refused queries: %v", err)
	}
}
