//go:build cgo

package duckdb

import (
	"context"
	"time"
)

// background checkpoints and compacts until Close.
//
// DuckDB's own checkpoint runs inside the commit that crosses
// checkpoint_threshold and holds up that Append for as long as it takes
// to write the WAL's data to the file (seconds at scale). Here it is off
// (Open) and this loop checkpoints on its own connection once
// CheckpointBytes were appended (append wakes it): appends go on
// meanwhile. Otherwise it wakes once a minute (the first a minute after
// Open) to compact the days that are due, and not at all when
// compaction is off.
func (s *Store) background() {
	defer s.done.Done()
	var compact <-chan time.Time
	if s.o.CompactAfter >= 0 {
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		compact = tick.C
	}
	for {
		select {
		case <-s.stop:
			s.checkpoint()
			return
		case <-s.ckpt:
			if s.wal.Load() >= s.o.CheckpointBytes {
				s.checkpoint()
			}
		case <-compact:
			s.compactDue()
		}
	}
}

// walAdd counts bytes appended and wakes the background loop once they
// call for a checkpoint.
func (s *Store) walAdd(n int64) {
	if s.wal.Add(n) >= s.o.CheckpointBytes {
		select {
		case s.ckpt <- struct{}{}:
		default:
		}
	}
}

// checkpoint writes the WAL into the database file.
func (s *Store) checkpoint() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := s.wal.Swap(0)
	start := time.Now()
	s.stats.ckpts.Add(1)
	_, err := s.db.ExecContext(ctx, "CHECKPOINT")
	since(&s.stats.ckptBusy, start)
	if err != nil {
		s.stats.ckptFailed.Add(1)
		s.wal.Add(n)
		s.log.Warn("connlog/duckdb: checkpoint failed; retrying later", "err", err)
		return
	}
	s.log.Debug("connlog/duckdb: checkpoint", "bytes", n, "took", time.Since(start))
}
