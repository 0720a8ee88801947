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
// CheckpointBytes were appended: appends go on meanwhile.
func (s *Store) background() {
	defer s.done.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastCompact := time.Time{}
	for {
		select {
		case <-s.stop:
			s.checkpoint()
			return
		case <-tick.C:
		}
		if s.wal.Load() >= s.o.CheckpointBytes {
			s.checkpoint()
		}
		if s.o.CompactAfter >= 0 && time.Since(lastCompact) > time.Minute {
			lastCompact = time.Now()
			s.compactDue()
		}
	}
}

// checkpoint writes the WAL into the database file.
func (s *Store) checkpoint() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := s.wal.Swap(0)
	start := time.Now()
	if _, err := s.db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		s.wal.Add(n)
		s.log.Warn("connlog/duckdb: checkpoint failed; retrying later", "err", err)
		return
	}
	s.log.Debug("connlog/duckdb: checkpoint", "bytes", n, "took", time.Since(start))
}
