//go:build cgo

package main

import (
	"context"
	"database/sql"
	"flag"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/tether-hub/tether/bench/internal/procstat"
	logduckdb "github.com/tether-hub/tether/internal/connlog/duckdb"
)

// MemSplit is where the process's resident memory was at the sample with
// the highest RSS: the Go runtime's memory (mapped and not returned to the
// kernel; of it the live and not yet collected heap objects), DuckDB's
// buffer manager (duckdb_memory(): its pool of blocks, sorts, hash
// tables, the appends not yet checkpointed), the store's buffers outside
// the Go heap (duckdb.BufferBytes), and the rest: C allocations outside
// the buffer manager, the allocator's free lists and the binary's pages.
type MemSplit struct {
	RSSMiB         float64
	GoMiB          float64 // /memory/classes/total minus heap/released
	GoHeapObjMiB   float64 // /memory/classes/heap/objects
	GoHeapGoalMiB  float64 // /gc/heap/goal
	DuckDBMiB      float64 // sum(memory_usage_bytes) of duckdb_memory()
	DuckDBTempMiB  float64 // sum(temporary_storage_bytes): spilled, on disk
	BuffersMiB     float64 // the store's buffers outside the Go heap (staged batches, a move's columns)
	OtherMiB       float64 // RSS - Go - DuckDB - buffers
	Samples        int
	DuckDBPeakMiB  float64 // the highest DuckDB figure of any sample
	GoPeakMiB      float64 // the highest Go figure of any sample
	GoHeapObjPeakM float64
}

var memProfile = flag.String("memprofile", "", "write the heap profile at the peak of Go heap objects to this file")

var memMetrics = []string{
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/goal:bytes",
}

// memSampler samples the split every gap until stop, and returns the
// sample of the highest RSS with the peaks of each part. Each call of
// stop ends a phase (ingest, then the queries after it): it returns the
// phase's figures and starts the next.
func memSampler(ctx context.Context, db *sql.DB, gap time.Duration) (stop func(last bool) MemSplit) {
	var (
		mu   sync.Mutex
		best MemSplit
		wg   sync.WaitGroup
	)
	done := make(chan struct{})
	samples := make([]metrics.Sample, len(memMetrics))
	for i, m := range memMetrics {
		samples[i].Name = m
	}
	const mib = 1 << 20
	sample := func() {
		metrics.Read(samples)
		goRes := float64(samples[0].Value.Uint64()-samples[1].Value.Uint64()) / mib
		var duck, temp sql.NullInt64
		if db != nil {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			db.QueryRowContext(qctx, "SELECT sum(memory_usage_bytes), sum(temporary_storage_bytes) FROM duckdb_memory()").Scan(&duck, &temp)
			cancel()
		}
		kib, err := procstat.RSSKiB(os.Getpid())
		if err != nil {
			return
		}
		s := MemSplit{
			RSSMiB:        float64(kib) / 1024,
			GoMiB:         goRes,
			GoHeapObjMiB:  float64(samples[2].Value.Uint64()) / mib,
			GoHeapGoalMiB: float64(samples[3].Value.Uint64()) / mib,
			DuckDBMiB:     float64(duck.Int64) / mib,
			DuckDBTempMiB: float64(temp.Int64) / mib,
			BuffersMiB:    float64(logduckdb.BufferBytes()) / mib,
		}
		s.OtherMiB = s.RSSMiB - s.GoMiB - s.DuckDBMiB - s.BuffersMiB
		mu.Lock()
		defer mu.Unlock()
		n, dp, gp, hp := best.Samples+1, max(best.DuckDBPeakMiB, s.DuckDBMiB), max(best.GoPeakMiB, s.GoMiB), max(best.GoHeapObjPeakM, s.GoHeapObjMiB)
		if *memProfile != "" && s.GoHeapObjMiB > best.GoHeapObjPeakM {
			// The heap profile at the new peak of heap objects (what
			// the last collection found live, by allocation site).
			if f, err := os.Create(*memProfile); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		if s.RSSMiB > best.RSSMiB {
			best = s
		}
		best.Samples, best.DuckDBPeakMiB, best.GoPeakMiB, best.GoHeapObjPeakM = n, dp, gp, hp
	}
	wg.Go(func() {
		t := time.NewTicker(gap)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	})
	return func(last bool) MemSplit {
		if last {
			close(done)
			wg.Wait()
		}
		sample()
		mu.Lock()
		defer mu.Unlock()
		b := best
		best = MemSplit{}
		return b
	}
}
