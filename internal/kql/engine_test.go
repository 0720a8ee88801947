package kql_test

import (
	"context"
	"errors"
	"testing"
	"time"

	logsqlite "github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
)

func TestEngineLimits(t *testing.T) {
	store, err := logsqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	eng := &kql.Engine{DB: store, Table: kql.AzureDiagnostics(), Dialect: kqlsqlite.Dialect{}, Timeout: time.Nanosecond}
	var qe *kql.Error
	if _, err := eng.Run(context.Background(), kql.Request{Query: "AzureDiagnostics | count"}); !errors.As(err, &qe) || qe.Code != kql.CodeTimeout {
		t.Errorf("timeout: %v", err)
	}
	eng.Timeout = 0
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := eng.Run(ctx, kql.Request{Query: "AzureDiagnostics | count"}); !errors.As(err, &qe) || qe.Code != kql.CodeCanceled {
		t.Errorf("canceled: %v", err)
	}
	long := "AzureDiagnostics | where " + string(make([]byte, kql.MaxQueryLen))
	if _, err := eng.Run(context.Background(), kql.Request{Query: long}); !errors.As(err, &qe) || qe.Code != kql.CodeLimit {
		t.Errorf("long query: %v", err)
	}
	res, err := eng.Run(context.Background(), kql.Request{Query: "AzureDiagnostics | count"})
	if err != nil || len(res.Rows) != 1 || res.Rows[0][0] != int64(0) {
		t.Errorf("count: %+v %v", res, err)
	}
}

// A query that reads the time column keeps the default timespan off; one
// that does not gets the last 24 h.
func TestDefaultTimespan(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for q, want := range map[string]bool{
		"AzureDiagnostics | count":                                                      true,
		"AzureDiagnostics | where TimeGenerated > ago(7d) | count":                      false,
		"AzureDiagnostics | project T = TimeGenerated | where T > ago(7d)":              false,
		"AzureDiagnostics | summarize by TimeGenerated | where TimeGenerated > ago(7d)": true,
	} {
		c, err := kql.Compile(q, kql.AzureDiagnostics(), kqlsqlite.Dialect{}, kql.CompileOptions{Now: now, DefaultTimespan: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.TimeRange != nil; got != want {
			t.Errorf("%s: default timespan applied %v, want %v", q, got, want)
		}
		if want && (!c.TimeRange.Start.Equal(now.Add(-24*time.Hour)) || !c.TimeRange.End.Equal(now)) {
			t.Errorf("%s: range %+v", q, c.TimeRange)
		}
	}
}
