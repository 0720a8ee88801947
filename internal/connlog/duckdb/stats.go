//go:build cgo

package duckdb

import (
	"sync/atomic"
	"time"
)

// Stats are a Store's running totals since Open: where Append's time
// goes (held back by the mover, writing the stage) and how busy the
// background work keeps DuckDB, for benchmarks to say what bounds ingest.
type Stats struct {
	Appends int64
	// Held is the time Appends waited for the mover (pace, waitRoom).
	Held time.Duration
	// StageWrite is the time Appends spent writing their frames to the
	// stage segment, StageSync the part of it in fsync.
	StageWrite, StageSync time.Duration
	Moves                 int64
	// MoveBusy is the time moves spent storing chunks in DuckDB (under
	// the write lock: decode, load, commit).
	MoveBusy time.Duration
	// Of it: making the columns before the transaction (dedup, days,
	// resource tuples, the loader's columns), the load inside it, and
	// the commit.
	MovePrep, MoveLoad, MoveCommit time.Duration
	Checkpoints                    int64
	// CheckpointBusy is the time background checkpoints took, failed
	// ones included; CheckpointsFailed counts those.
	CheckpointBusy    time.Duration
	CheckpointsFailed int64
	// TailReads counts queries that read the stage's tail (tail.go);
	// of their time, ReadFlush went to inserting the pending tails,
	// ReadPrep to the snapshot, the mark, the repeats and the view, and
	// ReadRun to the query itself and its rows.
	TailReads                    int64
	ReadFlush, ReadPrep, ReadRun time.Duration
}

// counters are Stats kept as atomics.
type counters struct {
	appends, held, stageWrite, stageSync, moves, moveBusy, movePrep, moveLoad, moveCommit, ckpts, ckptBusy, ckptFailed, tailReads, readFlush, readPrep, readRun atomic.Int64
}

// since adds the time since t to c.
func since(c *atomic.Int64, t time.Time) { c.Add(int64(time.Since(t))) }

// Stats returns the totals so far.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{
		Appends: c.appends.Load(), Held: time.Duration(c.held.Load()),
		StageWrite: time.Duration(c.stageWrite.Load()), StageSync: time.Duration(c.stageSync.Load()),
		Moves: c.moves.Load(), MoveBusy: time.Duration(c.moveBusy.Load()),
		MovePrep: time.Duration(c.movePrep.Load()), MoveLoad: time.Duration(c.moveLoad.Load()), MoveCommit: time.Duration(c.moveCommit.Load()),
		Checkpoints: c.ckpts.Load(), CheckpointBusy: time.Duration(c.ckptBusy.Load()), CheckpointsFailed: c.ckptFailed.Load(),
		TailReads: c.tailReads.Load(), ReadFlush: time.Duration(c.readFlush.Load()), ReadPrep: time.Duration(c.readPrep.Load()), ReadRun: time.Duration(c.readRun.Load()),
	}
}
