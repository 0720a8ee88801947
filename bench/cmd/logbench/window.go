//go:build cgo

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/tether-hub/tether/bench/loggen"
	logduckdb "github.com/tether-hub/tether/internal/connlog/duckdb"
)

// Windows: a store filled over several runs, each short enough for a quiet
// window of the shared machine (50M records at ~100k/s do not fit 600 s
// with the queries). The store's file stays (-db) and beside it a state
// file records what made it (the generator's options, the batch, the
// budget) and each run's Result. A run with the same -db reopens the store
// as the hub would after a restart, starts the generator again and skips
// the records the store holds (loggen's Skip: the same records follow),
// appends up to -window more, and times the queries over all of it. It
// prints every window so far and their sum.

// windowArgs are the flags of a windowed run.
type windowArgs struct {
	kind, path string
	window     int
	json       bool
	o          loggen.Options
	batch      int
	memMiB     int64
	ckptMiB    int64
	runs       int
	gap        time.Duration
	compact    bool
	rate       int
}

// windowState is the state file's content.
type windowState struct {
	Store     string
	Options   loggen.Options
	Batch     int
	MemoryMiB int64
	// Done is the records stored by the windows so far.
	Done    int
	Windows []Result
}

func statePath(db string) string { return db + ".logbench.json" }

// runWindow runs the next window of the store at a.path.
func runWindow(ctx context.Context, a windowArgs) {
	if err := os.MkdirAll(filepath.Dir(a.path), 0o755); err != nil {
		log.Fatal(err)
	}
	st, err := loadState(a)
	if err != nil {
		log.Fatalf("logbench: %v", err)
	}
	if st.Done >= st.Options.Records {
		log.Fatalf("logbench: %s holds all %d records already (%d windows)", a.path, st.Done, len(st.Windows))
	}
	res, err := run(ctx, a.kind, a.path, st.Options, st.Done, a.window, st.Batch, st.MemoryMiB, a.ckptMiB, a.runs, a.gap, a.compact, a.rate)
	if err != nil {
		log.Fatalf("logbench: window %d: %v", len(st.Windows)+1, err)
	}
	res.Window = len(st.Windows) + 1
	st.Done += res.Records
	st.Windows = append(st.Windows, res)
	if err := saveState(a.path, st); err != nil {
		log.Fatalf("logbench: %v", err)
	}
	if a.json {
		json.NewEncoder(os.Stdout).Encode(st)
		return
	}
	cols := make([]Result, 0, len(st.Windows)+1)
	for _, w := range st.Windows {
		w.Store = fmt.Sprintf("%s, window %d", w.Store, w.Window)
		cols = append(cols, w)
	}
	printTable(os.Stdout, append(cols, sumWindows(st.Windows)))
	fmt.Println("\n(all windows: records and times added up, rates over the sums; Append percentiles, max and RSS: the worst window; size and queries: the last.)")
	if st.Done < st.Options.Records {
		fmt.Printf("\n%d of %d records stored; the next run with -db %s continues.\n", st.Done, st.Options.Records, a.path)
	}
}

// loadState reads the state of a.path, or makes a new one from the flags
// when the store is new. Flags that made the store and differ from those
// given are refused: the records after would not be the same run's.
func loadState(a windowArgs) (windowState, error) {
	data, err := os.ReadFile(statePath(a.path))
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(a.path); err == nil {
			return windowState{}, fmt.Errorf("%s exists without %s: not a store this benchmark filled", a.path, statePath(a.path))
		}
		return windowState{Store: a.kind, Options: a.o, Batch: a.batch, MemoryMiB: a.memMiB}, nil
	}
	if err != nil {
		return windowState{}, err
	}
	var st windowState
	if err := json.Unmarshal(data, &st); err != nil {
		return windowState{}, fmt.Errorf("%s: %w", statePath(a.path), err)
	}
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, c := range []struct {
		flag       string
		was, given any
	}{
		{"store", st.Store, a.kind},
		{"records", st.Options.Records, a.o.Records},
		{"devices", st.Options.Devices, a.o.Devices},
		{"span", st.Options.Span, a.o.Span},
		{"end", st.Options.End, a.o.End},
		{"batch", st.Batch, a.batch},
		{"memory-mib", st.MemoryMiB, a.memMiB},
	} {
		if (given[c.flag] || c.flag == "store") && fmt.Sprint(c.was) != fmt.Sprint(c.given) {
			return windowState{}, fmt.Errorf("%s was filled with -%s %v, not %v", a.path, c.flag, c.was, c.given)
		}
	}
	return st, nil
}

// saveState writes st beside the store (a new file renamed over the old).
func saveState(db string, st windowState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(db) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(db))
}

// sumWindows is the windows as one run: records and times added up, the
// rates over the sums, the stalls' and RSS's worst window, the store's
// size and the queries of the last (during ingest as well).
func sumWindows(ws []Result) Result {
	last := ws[len(ws)-1]
	sum := last
	sum.Window, sum.Records, sum.QueriesDuring, sum.CPUSeconds = 0, 0, 0, 0
	sum.SetupSeconds, sum.IngestSecs, sum.InAppendSecs, sum.CompactSeconds, sum.FinalMoveMs = 0, 0, 0, 0, 0
	var cpu, gen, gc float64
	var st logduckdb.Stats
	for _, w := range ws {
		if w.Stats != nil {
			st.Held += w.Stats.Held
			st.StageWrite += w.Stats.StageWrite
			st.StageSync += w.Stats.StageSync
			st.MoveBusy += w.Stats.MoveBusy
			st.MovePrep += w.Stats.MovePrep
			st.MoveLoad += w.Stats.MoveLoad
			st.MoveCommit += w.Stats.MoveCommit
			st.Checkpoints += w.Stats.Checkpoints
			st.CheckpointBusy += w.Stats.CheckpointBusy
			st.TailReads += w.Stats.TailReads
			st.ReadFlush += w.Stats.ReadFlush
			st.ReadPrep += w.Stats.ReadPrep
			st.ReadRun += w.Stats.ReadRun
			sum.Stats = &st
		}
		sum.Records += w.Records
		sum.QueriesDuring += w.QueriesDuring
		sum.CPUSeconds += w.CPUSeconds
		sum.SetupSeconds += w.SetupSeconds
		sum.IngestSecs += w.IngestSecs
		sum.InAppendSecs += w.InAppendSecs
		sum.CompactSeconds += w.CompactSeconds
		sum.FinalMoveMs += w.FinalMoveMs
		cpu += w.IngestCPUus * float64(w.Records)
		gen += w.GeneratorCPUus * float64(w.Records)
		gc += w.GCCPUus * float64(w.Records)
		sum.AppendP50Ms = max(sum.AppendP50Ms, w.AppendP50Ms)
		sum.AppendP99Ms = max(sum.AppendP99Ms, w.AppendP99Ms)
		sum.AppendP999Ms = max(sum.AppendP999Ms, w.AppendP999Ms)
		sum.AppendMaxMs = max(sum.AppendMaxMs, w.AppendMaxMs)
		sum.RSSPeakMiB = max(sum.RSSPeakMiB, w.RSSPeakMiB)
		if w.Mem.RSSMiB > sum.Mem.RSSMiB {
			sum.Mem = w.Mem
		}
	}
	n := float64(max(sum.Records, 1))
	sum.WallRate, sum.AppendRate = n/sum.IngestSecs, n/sum.InAppendSecs
	sum.IngestCPUus, sum.GeneratorCPUus, sum.GCCPUus = cpu/n, gen/n, gc/n
	sum.Store = "all windows"
	return sum
}
