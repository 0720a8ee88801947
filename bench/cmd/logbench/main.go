//go:build cgo

// Command logbench is the log-store section of the benchmarks: it fills a
// log store with bench/loggen records (a fleet of -devices over -span)
// while the seed's queries run beside the appends, then times the queries
// over the result, and reports ingest rate, append stalls, bytes per
// record, query times and the process's RSS.
//
//	go run ./bench/cmd/logbench -compare -records 10000000 -sqlite-records 1000000
//
// -compare runs the DuckDB store and the SQLite store each in a child
// process (so each RSS is its own) and prints them side by side; -store
// runs one. Appends go in batches of -batch records, the connlog Writer's
// batch size. The generator runs one batch ahead in its own goroutine;
// "in Append" rates count only the time spent inside Append, the store's
// own cost (the generator costs about 13 µs a record of CPU, more than the
// DuckDB store, so the wall-clock rate is the generator's on 2 cores).
// Data goes to -dir and is deleted at the end unless -keep.
//
// A store too big for one run is filled in windows (window.go): -db names
// the store, kept; -window bounds the records of one run; a later run with
// the same -db continues it where the last one stopped.
//
//	logbench -store duckdb -records 50000000 -db /data/logs.duckdb -window 25000000   # twice
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tether-hub/tether/bench/internal/procstat"
	"github.com/tether-hub/tether/bench/loggen"
	"github.com/tether-hub/tether/internal/connlog"
	logduckdb "github.com/tether-hub/tether/internal/connlog/duckdb"
	logsqlite "github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/kql"
	kqlduckdb "github.com/tether-hub/tether/internal/kql/duckdb"
	kqlsqlite "github.com/tether-hub/tether/internal/kql/sqlite"
)

// The seed's queries (bench/cmd/querybench), and the fleet-wide ones of
// the log-store issue.
const (
	errorQuery = `AzureDiagnostics
| where ( ResourceType == "IOTHUBS" and Category == "Connections" and Level == "Error")`
	deviceQuery = `AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend DeviceId = tostring(parse_json(properties_s).deviceId)
| where DeviceId == "%s"`
	byResultQuery = `AzureDiagnostics | summarize count() by ResultType`
	distinctQuery = `AzureDiagnostics | where TimeGenerated > ago(1h) | distinct DeviceId | count`
	sdkQuery      = `AzureDiagnostics | where Category == "Connections" | summarize dcount(DeviceId) by SDKVersion = tostring(parse_json(properties_s).sdkVersion)`
)

// Result is one store's run, as a child prints it.
type Result struct {
	Store   string
	Records int // appended by this run
	// StoreRecords is the records in the store after the run (more than
	// Records when the run continued a store, window.go).
	StoreRecords int
	Window       int   // the run's number for its store (1: the first)
	Counted      int64 // AzureDiagnostics | count over everything, after the run

	SetupSeconds float64 // the generator's start: calibration, skipping what the store holds
	IngestSecs   float64 // wall time of the ingest (WallRate's)
	InAppendSecs float64 // of it, inside Append
	Devices      int
	Span         string
	OfferedRate  int     // records/s offered (-rate; 0: as fast as Append returns)
	WallRate     float64 // records/s, generator and the final move of staged records included
	AppendRate   float64 // records/s inside Append
	AppendP50Ms  float64
	AppendP99Ms  float64
	AppendMaxMs  float64
	AppendP999Ms float64
	FinalMoveMs  float64 // DuckDB: moving what was staged when the last Append returned
	// IngestCPUus is the process's CPU per record during ingest: Append,
	// the store's background work, the generator, the queries beside.
	IngestCPUus float64
	// GeneratorCPUus is the generator thread's share of IngestCPUus.
	GeneratorCPUus float64
	// GCCPUus is the Go collector's share (runtime/metrics, its workers
	// and assists): it collects the generator's garbage as well as the
	// store's.
	GCCPUus       float64
	QueriesDuring int // queries run while ingesting
	// DuringQueries are the times of those queries, by query (Rows: how
	// many ran); they look back from the newest record appended.
	DuringQueries []QueryTime
	// Stats are the DuckDB store's totals over the run (logduckdb.Stats).
	Stats          *logduckdb.Stats
	CompactSeconds float64
	FileBytes      int64
	UsedBytes      int64 // DuckDB: used blocks (the file also holds free ones)
	BytesPerRecord float64
	Queries        []QueryTime
	RSSPeakMiB     float64 // VmHWM
	RSSEndMiB      float64 // VmRSS after the queries
	MemoryLimitMiB int64
	CPUSeconds     float64
	// Mem and QueryMem are where the RSS was at its highest sample (every
	// 250 ms) during ingest and the queries after it.
	Mem, QueryMem MemSplit
}

// QueryTime is one query's median and max over its runs.
type QueryTime struct {
	Name     string
	MedianMs float64
	P99Ms    float64 // during ingest only
	MaxMs    float64
	Rows     int
	Note     string
}

func main() {
	log.SetFlags(0)
	var (
		compare   = flag.Bool("compare", false, "run both stores (child processes) and print them side by side")
		store     = flag.String("store", "duckdb", "duckdb or sqlite")
		dir       = flag.String("dir", filepath.Join(os.TempDir(), "tether-logbench"), "where the stores are made (deleted afterwards unless -keep)")
		keep      = flag.Bool("keep", false, "keep the stores")
		records   = flag.Int("records", 10_000_000, "records (DuckDB)")
		sqliteN   = flag.Int("sqlite-records", 1_000_000, "records for the SQLite store with -compare")
		devices   = flag.Int("devices", 100_000, "devices in the fleet")
		span      = flag.Duration("span", 30*24*time.Hour, "time range the records cover, ending at -end")
		endFlag   = flag.String("end", "", "end of the time range and the queries' now(), RFC 3339 (default: now)")
		batch     = flag.Int("batch", connlog.DefaultBatchSize, "records per Append (the connlog Writer's batch)")
		memory    = flag.Int64("memory-mib", 1024, "DuckDB store memory budget in MiB (tether serve --log-memory)")
		runs      = flag.Int("runs", 5, "runs of each query after ingest")
		queryGap  = flag.Duration("query-every", time.Second, "pause between queries during ingest (0: none run)")
		timeout   = flag.Duration("timeout", 90*time.Minute, "give up after this long")
		jsonOut   = flag.Bool("json", false, "print the result as JSON (for -compare)")
		noCompact = flag.Bool("no-compact", false, "DuckDB: do not sort the closed days by device before the queries")
		ckptMiB   = flag.Int64("checkpoint-mib", 0, "DuckDB: appended data that triggers a background checkpoint (0: the store's default)")
		duckSet   = flag.String("duckdb-set", "", "DuckDB: settings to SET GLOBAL after the store opens, name=value;… (to try allocator settings)")
		rate      = flag.Int("rate", 0, "offer at most this many records/s (0: as fast as Append takes them), to measure the stalls below the store's capacity")
		dbPath    = flag.String("db", "", "the store's file, kept: a run with the same -db continues it (window.go); -dir and -keep do not apply")
		window    = flag.Int("window", 0, "with -db: append at most this many records in this run (0: up to -records)")
	)
	gogc := flag.Int("gogc", hubGCPercent, "the Go collector's GC percent (GOGC in the environment wins); default the hub's (tether serve)")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gogc)
	}
	duckSettings = duckSet
	end := time.Now().UTC()
	if *endFlag != "" {
		t, err := time.Parse(time.RFC3339, *endFlag)
		if err != nil {
			log.Fatalf("logbench: -end: %v", err)
		}
		end = t
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if *compare {
		if *dbPath != "" {
			log.Fatal("logbench: -db runs one store (-store), not -compare")
		}
		compareStores(ctx, os.Args[0], *records, *sqliteN, end)
		return
	}
	if *dbPath != "" {
		runWindow(ctx, windowArgs{
			kind: *store, path: *dbPath, window: *window, json: *jsonOut,
			o:     loggen.Options{Records: *records, Devices: *devices, End: end, Span: *span, Seed: 1},
			batch: *batch, memMiB: *memory, ckptMiB: *ckptMiB, runs: *runs, gap: *queryGap, compact: !*noCompact, rate: *rate,
		})
		return
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(*dir, fmt.Sprintf("%s-%d.db", *store, os.Getpid()))
	if !*keep {
		defer func() {
			for _, suffix := range []string{"", ".wal", "-wal", "-shm", ".tmp"} {
				os.RemoveAll(path + suffix)
			}
		}()
	}
	res, err := run(ctx, *store, path, loggen.Options{Records: *records, Devices: *devices, End: end, Span: *span, Seed: 1},
		0, 0, *batch, *memory, *ckptMiB, *runs, *queryGap, !*noCompact, *rate)
	if err != nil {
		log.Fatalf("logbench: %v", err)
	}
	if *jsonOut {
		json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	printTable(os.Stdout, []Result{res})
}

// hubGCPercent is cmd/tether's serveGCPercent: the store is measured
// with the collector's headroom it has in the hub.
const hubGCPercent = 200

// duckSettings is -duckdb-set.
var duckSettings *string

// The DuckDB store's move and stage sizes (0: its defaults), to try them.
var (
	moveRecords = flag.Int("move-records", 0, "DuckDB: staged records that start a move (Options.MoveRecords)")
	maxStaged   = flag.Int("max-staged", 0, "DuckDB: staged records before Append waits (Options.MaxStaged)")
	stageMiB    = flag.Int64("stage-mib", 0, "DuckDB: staged bytes before Append waits, MiB (Options.MaxStagedBytes)")
	chunkMiB    = flag.Int64("chunk-mib", 0, "DuckDB: staged bytes a move stores in one transaction, MiB (Options.MoveChunkBytes)")
	noTail      = flag.Bool("no-tail", false, "DuckDB: queries move the stage before they read instead of reading its tail tables (Options.NoTail)")
	tailBatch   = flag.Int("tail-batch", 0, "DuckDB: pending tail records that wake the tail inserter (Options.TailBatch)")
)

// benchStore is what the bench needs of a store.
type benchStore interface {
	connlog.LogStore
	kql.Querier
}

func open(ctx context.Context, kind, path string, memMiB, ckptMiB int64) (benchStore, kql.Dialect, error) {
	switch kind {
	case "duckdb":
		s, err := logduckdb.Open(ctx, path, logduckdb.Options{
			MemoryLimit: memMiB << 20, CompactAfter: -1, CheckpointBytes: ckptMiB << 20,
			MoveRecords: *moveRecords, MaxStaged: *maxStaged, MaxStagedBytes: *stageMiB << 20, MoveChunkBytes: *chunkMiB << 20, NoTail: *noTail, TailBatch: *tailBatch,
		})
		if err != nil {
			return nil, nil, err
		}
		if err := kqlduckdb.Register(ctx, s.DB()); err != nil {
			return nil, nil, err
		}
		for _, kv := range strings.Split(*duckSettings, ";") {
			if name, value, ok := strings.Cut(kv, "="); ok {
				if _, err := s.DB().ExecContext(ctx, "SET GLOBAL "+name+" = '"+value+"'"); err != nil {
					return nil, nil, fmt.Errorf("-duckdb-set %s: %w", kv, err)
				}
			}
		}
		return s, kqlduckdb.Dialect{}, nil
	case "sqlite":
		s, err := logsqlite.Open(ctx, path)
		return s, kqlsqlite.Dialect{}, err
	}
	return nil, nil, fmt.Errorf("unknown store %q", kind)
}

// run fills the store at path with o's records after the first skip (the
// ones an earlier run stored), at most limit of them (0: all), then times
// the queries over the store.
func run(ctx context.Context, kind, path string, o loggen.Options, skip, limit, batch int, memMiB, ckptMiB int64, runs int, gap time.Duration, compact bool, rate int) (Result, error) {
	res := Result{Store: kind, Records: o.Records, Devices: o.Devices, Span: o.Span.String(), OfferedRate: rate}
	if kind == "duckdb" {
		res.MemoryLimitMiB = memMiB
	}
	setup := time.Now()
	g, err := loggen.New(o)
	if err != nil {
		return res, err
	}
	if skip > 0 {
		if got := g.Skip(skip); got != skip {
			return res, fmt.Errorf("the generator makes %d records, the store holds %d", got, skip)
		}
	}
	res.SetupSeconds = time.Since(setup).Seconds()
	if limit <= 0 {
		limit = o.Records
	}
	store, dialect, err := open(ctx, kind, path, memMiB, ckptMiB)
	if err != nil {
		return res, err
	}
	defer store.Close()
	var duckDB *sql.DB
	if d, ok := store.(*logduckdb.Store); ok {
		duckDB = d.DB()
	}
	stopMem := memSampler(ctx, duckDB, 250*time.Millisecond)
	if duckDB != nil && *memTrace > 0 {
		tctx, stopTrace := context.WithCancel(ctx)
		defer stopTrace()
		go traceMem(tctx, duckDB, *memTrace)
	}
	eng := &kql.Engine{DB: store, Table: kql.AzureDiagnostics(), Dialect: dialect, Now: func() time.Time { return o.End }, MaxBytes: 24 << 20}
	dev := loggen.DeviceID(42)

	// Ingest, with the seed's queries running beside it.
	batches := make(chan []connlog.Record, 4)
	var genCPU atomic.Int64 // ns of the generator's thread
	go func() {
		defer close(batches)
		// The generator on a thread of its own, so its CPU (its GC
		// assists included) can be told apart from the store's.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		t0 := threadCPU()
		defer func() { genCPU.Store(int64(threadCPU() - t0)) }()
		for made := 0; made < limit; {
			rs := g.Next(min(batch, limit-made))
			if len(rs) == 0 {
				return
			}
			made += len(rs)
			select {
			case batches <- rs:
			case <-ctx.Done():
				return
			}
		}
	}()
	// The queries beside the appends look back from the newest record
	// appended so far (newest), so their windows hold what is stored, not
	// the empty end of the span that the run has yet to reach.
	stopQueries := make(chan struct{})
	var queried atomic.Int64
	var newest atomic.Int64
	newest.Store(o.End.Add(-o.Span).UnixNano())
	during := map[string][]time.Duration{}
	duringNames := []string{"seed device query (24 h)", "seed error query (24 h)", "distinct DeviceId, last hour"}
	var qwg sync.WaitGroup
	if gap > 0 {
		qwg.Go(func() {
			qs := []string{fmt.Sprintf(deviceQuery, dev), errorQuery, distinctQuery}
			live := *eng
			live.Now = func() time.Time { return time.Unix(0, newest.Load()).Add(time.Millisecond) }
			for i := 0; ; i++ {
				select {
				case <-stopQueries:
					return
				case <-time.After(gap):
				}
				t := time.Now()
				_, err := live.Run(ctx, kql.Request{Query: qs[i%len(qs)]})
				if err != nil && ctx.Err() == nil {
					log.Printf("logbench: query during ingest: %v", err)
				}
				if err == nil {
					during[duringNames[i%len(qs)]] = append(during[duringNames[i%len(qs)]], time.Since(t))
				}
				queried.Add(1)
			}
		})
	}
	var lat []time.Duration
	var inAppend time.Duration
	cpu0, gc0 := processCPU(), gcCPU()
	start, last := time.Now(), time.Now()
	n := 0
	for rs := range batches {
		if rate > 0 {
			// Paced: the n records so far are due at start + n/rate.
			time.Sleep(time.Until(start.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))))
		}
		t := time.Now()
		if err := store.Append(ctx, rs); err != nil {
			close(stopQueries)
			return res, err
		}
		d := time.Since(t)
		newest.Store(max(newest.Load(), rs[len(rs)-1].TimeGenerated.UnixNano()))
		lat = append(lat, d)
		inAppend += d
		n += len(rs)
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "%s: %d records, %.0f/s wall, %.0f/s in Append\n", kind, n, float64(n)/time.Since(start).Seconds(), float64(n)/inAppend.Seconds())
		}
	}
	// Records an Append returned for may still be staged (the DuckDB
	// store's stage.go): ingest ends when they are in the database.
	if d, ok := store.(*logduckdb.Store); ok {
		t := time.Now()
		if err := d.Flush(ctx); err != nil {
			close(stopQueries)
			return res, err
		}
		res.FinalMoveMs = ms(time.Since(t))
	}
	wall := time.Since(start)
	res.Mem = stopMem(false)
	res.IngestCPUus = float64((processCPU() - cpu0).Microseconds()) / float64(max(n, 1))
	res.GeneratorCPUus = float64(genCPU.Load()) / 1e3 / float64(max(n, 1))
	res.GCCPUus = (gcCPU() - gc0) * 1e6 / float64(max(n, 1))
	close(stopQueries)
	qwg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
	res.Records, res.StoreRecords = n, skip+n
	res.IngestSecs, res.InAppendSecs = wall.Seconds(), inAppend.Seconds()
	res.WallRate, res.AppendRate = float64(n)/wall.Seconds(), float64(n)/inAppend.Seconds()
	res.AppendP50Ms, res.AppendP99Ms, res.AppendMaxMs = pct(0.5), pct(0.99), ms(lat[len(lat)-1])
	res.AppendP999Ms = pct(0.999)
	res.QueriesDuring = int(queried.Load())
	for _, name := range duringNames {
		if ts := during[name]; len(ts) > 0 {
			slices.Sort(ts)
			res.DuringQueries = append(res.DuringQueries, QueryTime{Name: name, MedianMs: ms(ts[len(ts)/2]), P99Ms: ms(ts[min(len(ts)-1, len(ts)*99/100)]), MaxMs: ms(ts[len(ts)-1]), Rows: len(ts)})
		}
	}
	if d, ok := store.(*logduckdb.Store); ok {
		st := d.Stats()
		res.Stats = &st
	}

	// The queries after ingest look back from the newest record stored
	// (o.End once every record is in; before, a window's end).
	now := g.Stats().Last.Add(time.Millisecond)
	eng.Now = func() time.Time { return now }
	if d, ok := store.(*logduckdb.Store); ok && compact {
		t := time.Now()
		if err := d.CompactAll(ctx, now); err != nil {
			return res, err
		}
		res.CompactSeconds = time.Since(t).Seconds()
	}
	if d, ok := store.(*logduckdb.Store); ok {
		// The store's background checkpoint may be under way (a
		// CHECKPOINT beside it fails): try again for a while.
		for try := 0; ; try++ {
			_, err := d.DB().ExecContext(ctx, "CHECKPOINT")
			if err == nil {
				break
			}
			if try == 120 || !strings.Contains(err.Error(), "other write transactions") {
				return res, err
			}
			time.Sleep(500 * time.Millisecond)
		}
		// The file keeps the blocks the day sorts freed (DuckDB reuses
		// them, it does not shrink the file): the used blocks are the data.
		var blockSize, used int64
		if err := d.DB().QueryRowContext(ctx, "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = current_database()").Scan(&blockSize, &used); err != nil {
			return res, err
		}
		res.UsedBytes = blockSize * used
	}
	for _, suffix := range []string{"", ".wal", "-wal"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			res.FileBytes += fi.Size()
		}
	}
	res.BytesPerRecord = float64(res.FileBytes) / float64(max(res.StoreRecords, 1))

	// The generator starts its records up to a tenth of the span early
	// (loggen: calibrated, then shifted to end at End).
	everything := &kql.TimeRange{Start: o.End.Add(-2 * o.Span), End: now}
	cases := []struct {
		name, query string
		span        *kql.TimeRange
	}{
		{"seed device query (24 h)", fmt.Sprintf(deviceQuery, dev), nil},
		{"seed device query (30 d)", fmt.Sprintf(deviceQuery, dev), everything},
		{"seed error query (24 h)", errorQuery, nil},
		{"count() by ResultType, everything", byResultQuery, everything},
		{"distinct DeviceId, last hour", distinctQuery, nil},
		{"dcount by sdkVersion (properties_s), 24 h", sdkQuery, nil},
	}
	for _, c := range cases {
		var times []time.Duration
		var r *kql.Result
		for range runs {
			t := time.Now()
			r, err = eng.Run(ctx, kql.Request{Query: c.query, Timespan: c.span})
			if err != nil {
				return res, fmt.Errorf("%s: %w", c.name, err)
			}
			times = append(times, time.Since(t))
		}
		slices.Sort(times)
		q := QueryTime{Name: c.name, MedianMs: ms(times[len(times)/2]), MaxMs: ms(times[len(times)-1]), Rows: len(r.Rows)}
		if len(r.Rows) == 1 && len(r.Columns) == 1 {
			q.Note = fmt.Sprintf("%s = %v", r.Columns[0].Name, r.Rows[0][0])
		}
		if r.Truncated {
			q.Note = "truncated: " + r.Reason
		}
		res.Queries = append(res.Queries, q)
	}
	cr, err := eng.Run(ctx, kql.Request{Query: "AzureDiagnostics | count", Timespan: everything})
	if err != nil {
		return res, fmt.Errorf("counting the records: %w", err)
	}
	if len(cr.Rows) == 1 && len(cr.Rows[0]) == 1 {
		fmt.Sscan(fmt.Sprint(cr.Rows[0][0]), &res.Counted)
	}
	if res.Counted != int64(res.StoreRecords) {
		return res, fmt.Errorf("the store counts %d records, %d were appended (%d by earlier runs)", res.Counted, res.StoreRecords, skip)
	}
	res.QueryMem = stopMem(true)
	pid := os.Getpid()
	if kib, err := procstat.RSSKiB(pid); err == nil {
		res.RSSEndMiB = float64(kib) / 1024
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		res.RSSPeakMiB = float64(ru.Maxrss) / 1024
		res.CPUSeconds = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// compareStores runs both stores as children of self and prints them.
func compareStores(ctx context.Context, self string, duckN, sqliteN int, end time.Time) {
	var results []Result
	for _, c := range []struct {
		store string
		n     int
	}{{"duckdb", duckN}, {"sqlite", sqliteN}} {
		args := []string{"-store", c.store, "-records", fmt.Sprint(c.n), "-json", "-end", end.Format(time.RFC3339)}
		flag.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "compare", "store", "records", "sqlite-records", "json", "end":
			default:
				args = append(args, "-"+f.Name+"="+f.Value.String())
			}
		})
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			log.Fatalf("logbench: %s: %v", c.store, err)
		}
		var r Result
		if err := json.Unmarshal(out, &r); err != nil {
			log.Fatalf("logbench: %s: %v\n%s", c.store, err, out)
		}
		results = append(results, r)
	}
	printTable(os.Stdout, results)
}

func printTable(w *os.File, rs []Result) {
	row := func(name string, f func(r Result) string) {
		fmt.Fprintf(w, "| %-44s |", name)
		for _, r := range rs {
			fmt.Fprintf(w, " %18s |", f(r))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "| %-44s |", "")
	for _, r := range rs {
		fmt.Fprintf(w, " %18s |", r.Store)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "|%s|", "---")
	for range rs {
		fmt.Fprintf(w, "%s|", "---:")
	}
	fmt.Fprintln(w)
	f0 := func(x float64) string { return fmt.Sprintf("%.0f", x) }
	f1 := func(x float64) string { return fmt.Sprintf("%.1f", x) }
	row("records", func(r Result) string { return fmt.Sprint(r.Records) })
	if slices.ContainsFunc(rs, func(r Result) bool { return r.Window > 0 }) {
		row("window (records in the store after it)", func(r Result) string {
			if r.Window == 0 {
				return fmt.Sprintf("all (%d)", r.StoreRecords)
			}
			return fmt.Sprintf("%d (%d)", r.Window, r.StoreRecords)
		})
		row("generator's start (calibrate, skip), s", func(r Result) string { return fmt.Sprintf("%.1f", r.SetupSeconds) })
		row("AzureDiagnostics | count after it", func(r Result) string { return fmt.Sprint(r.Counted) })
	}
	row("devices / span", func(r Result) string { return fmt.Sprintf("%d / %s", r.Devices, r.Span) })
	row("offered records/s (-rate; 0: unpaced)", func(r Result) string { return fmt.Sprint(r.OfferedRate) })
	row("ingest, records/s in Append (queries beside)", func(r Result) string { return f0(r.AppendRate) })
	row("ingest, records/s wall (generator included)", func(r Result) string { return f0(r.WallRate) })
	row("Append p50 / p99 / max, ms", func(r Result) string {
		return fmt.Sprintf("%s / %s / %s", f1(r.AppendP50Ms), f1(r.AppendP99Ms), f1(r.AppendMaxMs))
	})
	row("Append p99.9, ms", func(r Result) string { return f1(r.AppendP999Ms) })
	row("final move of staged records, ms", func(r Result) string { return f1(r.FinalMoveMs) })
	row("ingest CPU µs/record (process: generator, queries included)", func(r Result) string { return f1(r.IngestCPUus) })
	row("of which the generator's thread, µs/record", func(r Result) string { return f1(r.GeneratorCPUus) })
	row("store's CPU µs/record (the rest: Append, mover, DuckDB, GC, queries)", func(r Result) string { return f1(r.IngestCPUus - r.GeneratorCPUus) })
	row("of which the Go collector (all of the process's garbage), µs/record", func(r Result) string { return f1(r.GCCPUus) })
	row("queries run during ingest", func(r Result) string { return fmt.Sprint(r.QueriesDuring) })
	for i := range rs[0].DuringQueries {
		row("during ingest: "+rs[0].DuringQueries[i].Name+", runs: median / p99 / max ms", func(r Result) string {
			if i >= len(r.DuringQueries) {
				return "-"
			}
			q := r.DuringQueries[i]
			return fmt.Sprintf("%d: %s / %s / %s", q.Rows, f1(q.MedianMs), f1(q.P99Ms), f1(q.MaxMs))
		})
	}
	pctIngest := func(r Result, d time.Duration) string {
		return fmt.Sprintf("%.0f s (%.0f %%)", d.Seconds(), 100*d.Seconds()/max(r.IngestSecs, 1e-9))
	}
	stat := func(name string, f func(r Result) string) {
		row(name, func(r Result) string {
			if r.Stats == nil {
				return "-"
			}
			return f(r)
		})
	}
	stat("Appends held back by the mover, s (of ingest)", func(r Result) string { return pctIngest(r, r.Stats.Held) })
	stat("Appends writing the stage, s (of ingest)", func(r Result) string { return pctIngest(r, r.Stats.StageWrite) })
	stat("of which fsync, s (of ingest)", func(r Result) string { return pctIngest(r, r.Stats.StageSync) })
	stat("moves storing into DuckDB, s (of ingest)", func(r Result) string { return pctIngest(r, r.Stats.MoveBusy) })
	stat("of which columns / load / commit, s", func(r Result) string {
		return fmt.Sprintf("%.0f / %.0f / %.0f", r.Stats.MovePrep.Seconds(), r.Stats.MoveLoad.Seconds(), r.Stats.MoveCommit.Seconds())
	})
	stat("checkpoints: count, s (of ingest)", func(r Result) string {
		return fmt.Sprintf("%d, %s", r.Stats.Checkpoints, pctIngest(r, r.Stats.CheckpointBusy))
	})
	stat("queries through the tail: count; flush / prepare / run, ms each", func(r Result) string {
		n := max(r.Stats.TailReads, 1)
		each := func(d time.Duration) float64 { return ms(d) / float64(n) }
		return fmt.Sprintf("%d; %.1f / %.1f / %.1f", r.Stats.TailReads, each(r.Stats.ReadFlush), each(r.Stats.ReadPrep), each(r.Stats.ReadRun))
	})
	row("sort closed days by device, s", func(r Result) string { return f1(r.CompactSeconds) })
	row("file, MiB", func(r Result) string { return f0(float64(r.FileBytes) / (1 << 20)) })
	row("bytes/record (file)", func(r Result) string { return f0(r.BytesPerRecord) })
	row("bytes/record (used blocks)", func(r Result) string {
		if r.UsedBytes == 0 {
			return "-"
		}
		return f0(float64(r.UsedBytes) / float64(max(r.StoreRecords, 1)))
	})
	for i := range rs[0].Queries {
		row(rs[0].Queries[i].Name+", median (max) ms", func(r Result) string {
			if i >= len(r.Queries) {
				return "-"
			}
			return fmt.Sprintf("%s (%s)", f1(r.Queries[i].MedianMs), f1(r.Queries[i].MaxMs))
		})
	}
	row("RSS peak / end, MiB", func(r Result) string { return fmt.Sprintf("%s / %s", f0(r.RSSPeakMiB), f0(r.RSSEndMiB)) })
	for _, ph := range []struct {
		name string
		m    func(r Result) MemSplit
	}{{"ingest", func(r Result) MemSplit { return r.Mem }}, {"queries", func(r Result) MemSplit { return r.QueryMem }}} {
		row(ph.name+": highest RSS sample = Go + DuckDB + buffers + other, MiB", func(r Result) string {
			m := ph.m(r)
			return fmt.Sprintf("%s = %s + %s + %s + %s", f0(m.RSSMiB), f0(m.GoMiB), f0(m.DuckDBMiB), f0(m.BuffersMiB), f0(m.OtherMiB))
		})
		row(ph.name+": there Go heap objects / heap goal, MiB", func(r Result) string {
			return fmt.Sprintf("%s / %s", f0(ph.m(r).GoHeapObjMiB), f0(ph.m(r).GoHeapGoalMiB))
		})
		row(ph.name+": peaks Go / heap objects / DuckDB, MiB", func(r Result) string {
			m := ph.m(r)
			return fmt.Sprintf("%s / %s / %s", f0(m.GoPeakMiB), f0(m.GoHeapObjPeakM), f0(m.DuckDBPeakMiB))
		})
	}
	row("memory budget (--log-memory), MiB", func(r Result) string { return fmt.Sprint(r.MemoryLimitMiB) })
	row("process CPU, s", func(r Result) string { return f0(r.CPUSeconds) })
}

// processCPU is the process's user + system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// gcCPU is the CPU seconds the Go collector has used so far (an estimate
// of the runtime's).
func gcCPU() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return s[0].Value.Float64()
}

// threadCPU is the calling thread's user + system CPU time so far.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
