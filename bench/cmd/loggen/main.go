// Command loggen fills a Tether log store (the SQLite workspace file) with
// realistic Connections and DeviceIdentityOperations records (bench/loggen)
// through the store's own Append, in batches, and reports the ingest rate:
// the log-ingest benchmark. The file it makes is what the query benchmark
// reads.
//
//	go run ./bench/cmd/loggen -db /tmp/logs.db -records 10000000
//
// Generation runs in its own goroutine, one batch ahead of the appends, so
// the two overlap; the report gives the wall-clock rate and the rate of
// the appends alone (records / time spent inside Append).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tether-hub/tether/bench/loggen"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
)

func main() {
	log.SetFlags(0)
	var (
		db       = flag.String("db", "", "SQLite log store to fill (created; refused if it exists unless -append)")
		appendTo = flag.Bool("append", false, "add to an existing store")
		records  = flag.Int("records", 1_000_000, "records to generate")
		devices  = flag.Int("devices", loggen.DefaultDevices, "devices in the fleet")
		span     = flag.Duration("span", loggen.DefaultSpan, "time range the records cover, ending at -end")
		endFlag  = flag.String("end", "", "end of the time range, RFC 3339 (default: now)")
		seed     = flag.Uint64("seed", 1, "random seed (same seed and flags, same records)")
		batch    = flag.Int("batch", 20_000, "records per Append (one transaction)")
		every    = flag.Duration("progress", 2*time.Second, "progress line interval")
		dry      = flag.Bool("dry-run", false, "generate only (measures the generator)")
		timeout  = flag.Duration("timeout", 30*time.Minute, "give up after this long")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	)
	flag.Parse()
	if *db == "" && !*dry {
		log.Fatal("loggen: -db is required (or -dry-run)")
	}
	end := time.Now().UTC()
	if *endFlag != "" {
		t, err := time.Parse(time.RFC3339, *endFlag)
		if err != nil {
			log.Fatalf("loggen: -end: %v", err)
		}
		end = t
	}
	if *batch <= 0 {
		log.Fatal("loggen: -batch must be positive")
	}
	g, err := loggen.New(loggen.Options{Records: *records, Devices: *devices, End: end, Span: *span, Seed: *seed})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	var store *sqlite.Store
	if !*dry {
		if _, err := os.Stat(*db); err == nil && !*appendTo {
			log.Fatalf("loggen: %s exists (use -append to add to it)", *db)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Fatal(err)
		}
		if store, err = sqlite.Open(ctx, *db); err != nil {
			log.Fatal(err)
		}
		defer store.Close()
	}
	fmt.Fprintf(os.Stderr, "loggen: %d records, %d devices, %s ending %s, mean session %s, batch %d, GOMAXPROCS %d\n",
		*records, *devices, *span, end.Format(time.RFC3339), g.SessionLength().Round(time.Second), *batch, runtime.GOMAXPROCS(0))

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
	res, err := run(ctx, g, store, *batch, *every)
	if err != nil {
		log.Fatalf("loggen: after %d records: %v", res.records, err)
	}
	report(os.Stdout, g.Stats(), res, *db, *dry)
}

// result is what a run measured.
type result struct {
	records   int
	wall      time.Duration
	appending time.Duration // inside Append
	slowest   time.Duration // the slowest Append
}

// run generates batches in a goroutine and appends them here.
func run(ctx context.Context, g *loggen.Generator, store *sqlite.Store, batch int, every time.Duration) (result, error) {
	batches := make(chan []connlog.Record, 2)
	go func() {
		defer close(batches)
		for {
			rs := g.Next(batch)
			if len(rs) == 0 {
				return
			}
			select {
			case batches <- rs:
			case <-ctx.Done():
				return
			}
		}
	}()
	var res result
	start := time.Now()
	last, lastN := start, 0
	for rs := range batches {
		if store != nil {
			t := time.Now()
			if err := store.Append(ctx, rs); err != nil {
				return res, err
			}
			d := time.Since(t)
			res.appending += d
			res.slowest = max(res.slowest, d)
		}
		res.records += len(rs)
		if now := time.Now(); now.Sub(last) >= every {
			fmt.Fprintf(os.Stderr, "%12d records  %8.0f/s now  %8.0f/s overall  (at %s)\n", res.records,
				float64(res.records-lastN)/now.Sub(last).Seconds(), float64(res.records)/now.Sub(start).Seconds(),
				rs[len(rs)-1].TimeGenerated.Format(time.RFC3339))
			last, lastN = now, res.records
		}
	}
	res.wall = time.Since(start)
	return res, ctx.Err()
}

func report(w *os.File, st loggen.Stats, res result, db string, dry bool) {
	rate := func(d time.Duration) float64 { return float64(res.records) / d.Seconds() }
	fmt.Fprintf(w, "records      %d (%s … %s)\n", res.records, st.First.Format(time.RFC3339), st.Last.Format(time.RFC3339))
	fmt.Fprintf(w, "wall         %s  %.0f records/s\n", res.wall.Round(time.Millisecond), rate(res.wall))
	if !dry {
		fmt.Fprintf(w, "in Append    %s  %.0f records/s  (slowest batch %s)\n", res.appending.Round(time.Millisecond), rate(res.appending), res.slowest.Round(time.Millisecond))
		var size int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(db + suffix); err == nil {
				size += fi.Size()
			}
		}
		fmt.Fprintf(w, "file         %.1f MiB (%.0f bytes/record)\n", float64(size)/(1<<20), float64(size)/float64(max(res.records, 1)))
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Fprintf(w, "process CPU  %s user+system (generator, appends and SQLite together)  %.1f µs/record\n",
		cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(max(res.records, 1)))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(w, "heap         %.1f MiB in use, %.1f MiB from the OS\n", float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20))
	fmt.Fprintf(w, "categories   %s\n", counts(st.ByCategory, st.Records))
	fmt.Fprintf(w, "ResultType   %s\n", counts(st.ByResult, st.Records))
}

// counts renders m as "key n (p%)", largest first.
func counts(m map[string]int, total int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return m[b] - m[a] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if name == "" {
			name = `""`
		}
		parts[i] = fmt.Sprintf("%s %d (%.2f%%)", name, m[k], 100*float64(m[k])/float64(max(total, 1)))
	}
	return strings.Join(parts, ", ")
}
