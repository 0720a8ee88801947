package kql_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	logsqlite "github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
)

// FuzzCompile: parsing, compiling and running any text never panics, and
// every failure is a *kql.Error (the user's mistake, with a position or a
// limit), never a database error leaking out as the hub's fault.
func FuzzCompile(f *testing.F) {
	for _, q := range seedQueries {
		f.Add(q)
	}
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, block := range strings.Split(string(data), "\nquery")[1:] {
			_, rest, _ := strings.Cut(block, "\n")
			q, _, _ := strings.Cut(rest, "\n----")
			f.Add(q)
		}
	}
	store, err := logsqlite.Open(context.Background(), ":memory:")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	var recs []connlog.Record
	for i, line := range []string{
		`connect 2026-03-01T07:00:00Z dev-a sdk="azure-iot-device/1.17.1 (node v18.0.0; Linux; x64)"`,
		`disconnect 2026-03-01T07:20:00Z dev-a reason=token-expired`,
		`refused 2026-03-01T08:00:00Z Dev-C reason=auth-failed`,
		`create 2026-03-01T06:00:00Z dev-b`,
	} {
		rs, err := loadLine(line, i)
		if err != nil {
			f.Fatal(err)
		}
		recs = append(recs, rs...)
	}
	if err := store.Append(context.Background(), recs); err != nil {
		f.Fatal(err)
	}
	eng := &kql.Engine{DB: store, Table: kql.AzureDiagnostics(), Dialect: kqlsqlite.Dialect{},
		Now: func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }, Timeout: 5 * time.Second, MaxRows: 100}
	f.Fuzz(func(t *testing.T, q string) {
		res, err := eng.Run(context.Background(), kql.Request{Query: q})
		if err != nil {
			var qe *kql.Error
			if !errors.As(err, &qe) {
				t.Fatalf("query %q: internal error: %v", q, err)
			}
			if qe.Code == kql.CodeTimeout {
				return
			}
			if qe.Pos.IsValid() && qe.Pos.Offset > len(q) {
				t.Fatalf("query %q: error position %+v beyond the text", q, qe.Pos)
			}
			return
		}
		for _, row := range res.Rows {
			if len(row) != len(res.Columns) {
				t.Fatalf("query %q: row of %d cells for %d columns", q, len(row), len(res.Columns))
			}
		}
	})
}
