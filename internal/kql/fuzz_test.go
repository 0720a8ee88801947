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
	// Corners of the compiler, kept as seeds (they run in every go test).
	for _, q := range []string{
		`AzureDiagnostics | summarize count() by 1`,
		`AzureDiagnostics | extend x = 1 | summarize by x`,
		`AzureDiagnostics | summarize make_set(parse_json(properties_s)), make_set(DurationMs > 0), make_set(now() - TimeGenerated)`,
		`AzureDiagnostics | summarize arg_max(TimeGenerated, *) | project properties_s`,
		`AzureDiagnostics | extend p = parse_json(properties_s) | distinct p`,
		`AzureDiagnostics | extend p = parse_json(properties_s) | summarize count() by p | where isnotempty(p.deviceId)`,
		`AzureDiagnostics | extend p = parse_json(properties_s) | where p == "x" or p.deviceId in ("a") or p.keepAlive > 3`,
		`AzureDiagnostics | take 1 | extend x = iff(true, parse_json("{}"), parse_json("[]")) | project x.a, x[0]`,
		`AzureDiagnostics | where datetime(null) < now() | project -9223372036854775807 - 10`,
		`AzureDiagnostics | summarize sum(9223372036854775807)`,
		`let x = parse_json('{"a":1}'); AzureDiagnostics | project x.a, tostring(x), toint(x.a) + 1`,
		`AzureDiagnostics | top 0 by 1 | order by 2 | count | count`,
		`AzureDiagnostics | summarize count() | summarize count()`,
		`AzureDiagnostics | extend x = todatetime(DeviceId), y = totimespan(DeviceId), z = tobool(DeviceId), w = todouble(DeviceId)`,
		`AzureDiagnostics | extend x = bin(DurationMs, 2.5), y = bin(todouble(DurationMs), 2), z = bin(now() - TimeGenerated, 1h)`,
		`AzureDiagnostics | summarize dcount(parse_json(properties_s)), avg(now() - TimeGenerated), sum(1h), min(true)`,
		`AzureDiagnostics | extend x = strcat(parse_json(properties_s), 1.5, true, 1h, now(), DurationMs)`,
		`AzureDiagnostics | take 1 | project a = 1h / 0, b = 1 / 0, c = 1 % 0, d = 1.0 / 0, e = 1h * 2.5, f = 2 * 1h, g = 1h % 7m`,
		`AzureDiagnostics | take 1 | project x = -(-9223372036854775807 - 1), y = TimeGenerated + 100000d, z = tolong(TimeGenerated)`,
		`AzureDiagnostics | where tostring(parse_json(properties_s)["deviceId"]) =~ "DEV-A" | extend p = parse_json(properties_s) | project tostring(p.deviceId), p`,
		`AzureDiagnostics | summarize arg_min(strlen(DeviceId), DeviceId, properties_s) by Category`,
		`AzureDiagnostics | extend a = case(false, parse_json('1'), true, parse_json('"x"'), parse_json(properties_s)) | project tostring(a)`,
		`AzureDiagnostics | order by TimeGenerated | extend x = 1 | take 3 | summarize by x | order by x | take 1 | project y = x + 1`,
		`AzureDiagnostics | where DeviceId has "" and DeviceId hasprefix "de" and DeviceId !hassuffix "a"`,
	} {
		f.Add(q)
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
