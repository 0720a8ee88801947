//go:build cgo

package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/tether-hub/tether/bench/internal/procstat"
	logduckdb "github.com/tether-hub/tether/internal/connlog/duckdb"
)

var memTrace = flag.Duration("mem-trace", 0, "DuckDB: print a line to stderr every this long with RSS, Go, DuckDB's memory by tag and the tail tables' rows (0: none)")

// traceMem prints, every gap until ctx ends, where the process's memory
// is: RSS, the Go runtime's, the store's buffers, duckdb_memory() by tag
// (the non-zero ones) and the rows of the in-memory database's tables
// (the stage's tail tables), to tell which of them grows.
func traceMem(ctx context.Context, db *sql.DB, gap time.Duration) {
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	const mib = 1 << 20
	start := time.Now()
	t := time.NewTicker(gap)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		kib, _ := procstat.RSSKiB(os.Getpid())
		var b strings.Builder
		fmt.Fprintf(&b, "memtrace %6.1fs rss %5d go %4d buf %4d", time.Since(start).Seconds(), kib>>10,
			(samples[0].Value.Uint64()-samples[1].Value.Uint64())/mib, logduckdb.BufferBytes()/mib)
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if rows, err := db.QueryContext(qctx, "SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0 ORDER BY tag"); err == nil {
			for rows.Next() {
				var tag string
				var n int64
				if rows.Scan(&tag, &n) == nil {
					fmt.Fprintf(&b, " %s %d", strings.ToLower(tag), n/mib)
				}
			}
			rows.Close()
		}
		var tables, tailRows sql.NullInt64
		db.QueryRowContext(qctx, "SELECT count(*), sum(estimated_size) FROM duckdb_tables() WHERE database_name = 'tether_arrow' AND table_name <> 'tail_pin'").Scan(&tables, &tailRows)
		cancel()
		fmt.Fprintf(&b, " | tails %d rows %d", tables.Int64, tailRows.Int64)
		fmt.Fprintln(os.Stderr, b.String())
	}
}
