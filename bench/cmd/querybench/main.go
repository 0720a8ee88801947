// Command querybench times the seed's three Kusto queries (and variants)
// over a large generated log: the query benchmark of bench/README.md.
//
//	go run ./bench/cmd/querybench -db /tmp/tether-querybench/10M.db -records 10000000
//
// When -db does not exist it is made first with bench/loggen (the same
// realistic generator as the ingest benchmark, ending at -end), so the
// 10,000,000-record file is built only on demand, never by `go test`.
// Queries run through kql.Engine exactly as POST /api/v1/query runs them
// (compile, execute, convert every cell; 10,000-row limit), with now()
// = -end. Each is run -runs times; the report gives min, median and max.
// The whole command stops after -timeout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/tether-hub/tether/bench/loggen"
	logsqlite "github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/kql"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
)

// The seed's queries, verbatim (test-device becomes a device of the
// generated fleet: the seed's name would match nothing).
const (
	errorQuery = `AzureDiagnostics
| where ( ResourceType == "IOTHUBS" and Category == "Connections" and Level == "Error")`
	deviceQuery = `AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend DeviceId = tostring(parse_json(properties_s).deviceId)
| where DeviceId == "%s"`
	distinctQuery = `AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend parsed_json = parse_json(properties_s)
| extend SDKVersion = tostring(parsed_json.sdkVersion) , DeviceId = tostring(parsed_json.deviceId) , Protocol = tostring(parsed_json.protocol)
| distinct TimeGenerated, OperationName, Level, ResultType, ResultDescription, DeviceId, Protocol, SDKVersion`
)

func main() {
	log.SetFlags(0)
	var (
		db      = flag.String("db", filepath.Join(os.TempDir(), "tether-querybench", "10M.db"), "log store to query (made with bench/loggen if missing)")
		records = flag.Int("records", 10_000_000, "records to generate when -db is missing")
		endFlag = flag.String("end", "2026-01-08T00:00:00Z", "end of the generated time range and the queries' now()")
		runs    = flag.Int("runs", 5, "runs of each query")
		device  = flag.Int("device", 42, "fleet index of the device of the device query")
		timeout = flag.Duration("timeout", 45*time.Minute, "give up after this long")
		only    = flag.String("only", "", "run only the queries whose name contains this")
		cpuprof = flag.String("cpuprofile", "", "write a CPU profile of the queries to this file")
	)
	flag.Parse()
	end, err := time.Parse(time.RFC3339, *endFlag)
	if err != nil {
		log.Fatalf("querybench: -end: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	if _, err := os.Stat(*db); errors.Is(err, fs.ErrNotExist) {
		if err := generate(ctx, *db, *records, end); err != nil {
			os.Remove(*db)
			log.Fatalf("querybench: generating %s: %v", *db, err)
		}
	} else if err != nil {
		log.Fatal(err)
	}
	store, err := logsqlite.Open(ctx, *db)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	var total int64
	if err := store.DB().QueryRowContext(ctx, "SELECT count(*) FROM AzureDiagnostics").Scan(&total); err != nil {
		log.Fatal(err)
	}
	eng := &kql.Engine{DB: store, Table: kql.AzureDiagnostics(), Dialect: kqlsqlite.Dialect{},
		Now: func() time.Time { return end }}
	dev := loggen.DeviceID(*device)
	full := &kql.TimeRange{Start: end.Add(-365 * 24 * time.Hour), End: end}
	hour := &kql.TimeRange{Start: end.Add(-time.Hour), End: end}
	cases := []struct {
		name, query string
		span        *kql.TimeRange
	}{
		{"device, default 24h", fmt.Sprintf(deviceQuery, dev), nil},
		{"device, full range", fmt.Sprintf(deviceQuery, dev), full},
		{"errors, default 24h", errorQuery, nil},
		{"errors, last hour", errorQuery, hour},
		{"errors, full range", errorQuery, full},
		{"errors | project 5 columns, default 24h", errorQuery + "\n| project TimeGenerated, DeviceId, OperationName, ResultType, ResultDescription", nil},
		{"errors | count, default 24h", errorQuery + "\n| count", nil},
		{"errors | count, full range", errorQuery + "\n| count", full},
		{"distinct, last hour", distinctQuery, hour},
		{"distinct, default 24h", distinctQuery, nil},
		{"distinct, full range", distinctQuery, full},
		{"distinct | count, last hour", distinctQuery + "\n| count", hour},
		{"distinct | count, full range", distinctQuery + "\n| count", full},
		{"summarize count() by ResultType, full range", "AzureDiagnostics | where Category == \"Connections\" | summarize count() by ResultType", full},
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("querybench: %s, %d records, now() = %s, %d runs each, device %s\n", *db, total, end.Format(time.RFC3339), *runs, dev)
	fmt.Printf("%-46s %9s %9s %9s %7s %s\n", "query", "min", "median", "max", "rows", "")
	for _, c := range cases {
		if *only != "" && !strings.Contains(c.name, *only) {
			continue
		}
		var times []time.Duration
		var res *kql.Result
		var qe *kql.Error
		for range *runs {
			t := time.Now()
			res, err = eng.Run(ctx, kql.Request{Query: c.query, Timespan: c.span})
			if errors.As(err, &qe) && qe.Code == kql.CodeTimeout {
				break
			}
			if err != nil {
				log.Fatalf("querybench: %s: %v", c.name, err)
			}
			times = append(times, time.Since(t))
		}
		if err != nil {
			fmt.Printf("%-46s %9s %9s %9s %7s %s\n", c.name, "-", "-", "-", "-", "timeout: "+err.Error())
			continue
		}
		slices.Sort(times)
		note := ""
		if len(res.Rows) == 1 && len(res.Columns) == 1 {
			note = fmt.Sprintf("%s = %v", res.Columns[0].Name, res.Rows[0][0])
		}
		if res.Truncated {
			note = "truncated (" + res.Reason + ")"
		}
		fmt.Printf("%-46s %9s %9s %9s %7d %s\n", c.name, ms(times[0]), ms(times[len(times)/2]), ms(times[len(times)-1]), len(res.Rows), note)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

// generate fills a new store at path with n loggen records ending at end.
func generate(ctx context.Context, path string, n int, end time.Time) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	g, err := loggen.New(loggen.Options{Records: n, End: end})
	if err != nil {
		return err
	}
	store, err := logsqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer store.Close()
	start, done := time.Now(), 0
	fmt.Fprintf(os.Stderr, "querybench: generating %d records into %s (once; later runs reuse it)\n", n, path)
	for {
		rs := g.Next(20_000)
		if len(rs) == 0 {
			break
		}
		if err := store.Append(ctx, rs); err != nil {
			return err
		}
		done += len(rs)
		if done%1_000_000 < len(rs) {
			fmt.Fprintf(os.Stderr, "  %d records, %.0f/s\n", done, float64(done)/time.Since(start).Seconds())
		}
	}
	// Planner statistics, as a long-running hub's store would gather.
	_, err = store.DB().ExecContext(ctx, "ANALYZE")
	return err
}
