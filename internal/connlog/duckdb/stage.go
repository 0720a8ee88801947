//go:build cgo

package duckdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
)

// The stage: Append's durability without a DuckDB commit per batch.
//
// A DuckDB commit costs an fsync of its WAL and a share of the checkpoint
// that must later compress what the WAL holds, and a checkpoint holds up
// the commits behind it for seconds at scale. Committing the Writer's
// batches of 1,000 one by one bounded ingest by those: ~27 ms a commit on
// this machine's disk, and Append stalls of 1.6–2.6 s. So Append writes
// the batch to a plain segment file next to the database (one write, one
// fsync) and returns; a background mover takes everything staged into
// DuckDB in one large transaction (every MoveRecords records or
// MoveInterval), then deletes the segments it moved. Readers (Find,
// ReadQuery, DeleteBefore, BackupTo) move what is staged first, so every
// record an Append returned for is in what they read. Open moves the
// segments a crash left behind; records already in the store are skipped
// there like any repeat (Append's _ItemId dedup), so a crash between the
// DuckDB commit and the segments' removal doubles nothing.
//
// Back-pressure: when MaxStaged records or MaxStagedBytes wait, Append
// waits until the mover takes them before staging more, so memory stays
// bounded when DuckDB falls behind. Staged records wait in memory as their frames'
// payloads (one string a batch, no pointers for the GC to follow, about
// the size of the text), which the move reads as they are (rows.go).
type stage struct {
	mu     sync.Mutex // guards the fields below; held across a segment write
	base   string     // segment files are base.N
	f      *os.File   // the segment Appends write to; nil once closed
	n      int        // its number
	old    []string   // earlier segments, not yet moved
	frames []string   // payloads of the staged batches (stage_codec.go)
	bufs   []*[]byte  // the pooled buffer each frame is in (nil: not pooled)
	seq0s  []int64    // each frame's first _Seq
	tails  []*tail    // each frame as a batch readers query (tail.go; nil: none)
	count  int        // records in frames
	size   int64      // memory of the frames (frameBytes)
	since  time.Time  // when the oldest staged record was staged
	putN   int64      // records ever staged
	movedN int64      // of those, the first movedN are in DuckDB
	// nextSeq is the next record's _Seq, hwm the newest TimeGenerated
	// stored or staged (a record not newer is a suspect: tail.go).
	nextSeq, hwm int64
	// inflight are the tails of the frames a move took and has not
	// stored yet (readers query them with the staged ones).
	inflight []*tail

	// room, when not nil, is closed by the next take (or close): Appends
	// held back by back-pressure wait for it.
	room chan struct{}
	// failed is the error of the last move if it failed (the records are
	// back in the stage); Appends held back return it.
	failed error

	// rate is the records a second of the last move (0: none yet), which
	// pace holds the Appends to while the stage is over half full.
	rate float64

	moveMu sync.Mutex    // one move at a time
	kick   chan struct{} // wakes the mover

	// pending are the tails of staged frames not yet in their tail
	// tables, pendingN their records; insertTails puts tails there and
	// frees their data (tail.go; nil: no tails), one call at a time
	// (tailMu); tailKick wakes the tail inserter.
	pending     []*tail
	pendingN    int
	insertTails func([]*tail) error
	tailBatch   int // pending records that wake the tail inserter
	tailMu      sync.Mutex
	tailKick    chan struct{}
}

// stageSuffix follows the database path in the segment files' names.
const stageSuffix = ".stage."

// openStage lists the segments at base (dbPath + stageSuffix) and starts
// a new one after them; the listed ones are returned for replay.
func openStage(dbPath string) (*stage, []string, error) {
	base := dbPath + stageSuffix
	old, last, err := listSegments(base)
	if err != nil {
		return nil, nil, err
	}
	st := &stage{base: base, n: last, kick: make(chan struct{}, 1), tailKick: make(chan struct{}, 1)}
	if err := st.rotate(); err != nil {
		return nil, nil, err
	}
	return st, old, nil
}

// listSegments returns the segment files at base in order, and the
// highest number among them (0 if none).
func listSegments(base string) ([]string, int, error) {
	matches, err := filepath.Glob(globEscape(base) + "*")
	if err != nil {
		return nil, 0, err
	}
	type seg struct {
		n    int
		path string
	}
	var segs []seg
	for _, m := range matches {
		n, err := strconv.Atoi(strings.TrimPrefix(m, base))
		if err != nil || n <= 0 {
			continue
		}
		segs = append(segs, seg{n, m})
	}
	slices.SortFunc(segs, func(a, b seg) int { return a.n - b.n })
	var paths []string
	last := 0
	for _, s := range segs {
		paths = append(paths, s.path)
		last = s.n
	}
	return paths, last, nil
}

func globEscape(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(p)
}

// rotate closes the current segment (keeping it in old) and opens the
// next. The caller holds mu (or owns st).
func (st *stage) rotate() error {
	next := st.n + 1
	f, err := os.OpenFile(st.base+strconv.Itoa(next), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if st.f != nil {
		st.old = append(st.old, st.f.Name())
		st.f.Close()
	}
	st.f, st.n = f, next
	return nil
}

// put writes records to the current segment, fsyncs it and keeps them
// for the mover. On a failed write the segment is left behind (what was
// written of the batch is cut off at replay by its checksum) and a new
// one started.
//
// build makes the frame's tail (nil: none).
//
// It returns how many records are staged after it, and first true when
// the stage was empty before (the mover then starts its MoveInterval);
// syncNs gets the time the fsync took.
func (st *stage) put(records []connlog.Record, build func(payload string, records []connlog.Record) *tail, syncNs *atomic.Int64) (n int, first bool, err error) {
	// The frame is encoded into a pooled buffer (bufpool.go) that the
	// stage keeps as it is until the move, and its tail built (tail.go),
	// outside the lock.
	pb := getBuf(frameSize(records))
	b := encodeFrame((*pb)[:0], records)
	if cap(b) != cap(*pb) {
		// frameSize was wrong (a bug): b is new memory, not the pool's.
		putBuf(pb)
		pb = nil
	}
	// The tail is built while the frame is written, and inserted while
	// it is synced: one Append's three steps on two cores, where in turn
	// they made Append the bound of ingest (logbench 300k: Appends busy
	// 96 % of the time, 10 ms a batch of 1,000).
	payload := framePayload(b)
	var tl *tail
	built := make(chan struct{})
	go func() {
		defer close(built)
		tl = build(payload, records)
	}()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.f == nil {
		<-built
		if tl != nil {
			tl.data.free()
		}
		if pb != nil {
			putBuf(pb)
		}
		return 0, false, ErrClosed
	}
	synced := make(chan error, 1)
	if _, err = st.f.Write(b); err != nil {
		synced <- err
	} else {
		f := st.f
		go func() {
			t := time.Now()
			err := f.Sync()
			since(syncNs, t)
			synced <- err
		}()
	}
	<-built
	seq0 := st.nextSeq
	tl = st.number(records, tl)
	if err = <-synced; err != nil {
		if tl != nil {
			tl.data.free()
		}
		if pb != nil {
			putBuf(pb)
		}
		if rerr := st.rotate(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return 0, false, fmt.Errorf("stage: %w", err)
	}
	first = st.count == 0
	if first {
		st.since = time.Now()
	}
	st.frames = append(st.frames, payload)
	st.bufs = append(st.bufs, pb)
	st.seq0s = append(st.seq0s, seq0)
	st.tails = append(st.tails, tl)
	if tl != nil {
		// Into its tail table with the others pending, by the tail
		// inserter, a reader or the move, whichever comes first.
		st.pending = append(st.pending, tl)
		if st.pendingN += tl.n; st.pendingN >= st.tailBatch {
			select {
			case st.tailKick <- struct{}{}:
			default:
			}
		}
	}
	st.count += len(records)
	st.size += frameBytes(payload, pb)
	st.putN += int64(len(records))
	return st.count, first, nil
}

// frameBytes is the memory a staged frame holds: its buffer's (a size
// class above the frame's), or the frame's own if not pooled.
func frameBytes(f string, b *[]byte) int64 {
	if b != nil {
		return int64(cap(*b))
	}
	return int64(len(f))
}

// wake tells the mover to look at the stage again (it waits for this
// when nothing is staged).
func (st *stage) wake() {
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// waitRoom returns once fewer than maxN records and maxBytes are staged:
// at once, or when the mover takes what is staged (it is woken), or when
// ctx ends. Back-pressure: an Append waits for the rest of the move under
// way, not for a move of its own.
func (st *stage) waitRoom(ctx context.Context, maxN int, maxBytes int64) error {
	for {
		st.mu.Lock()
		if st.count < maxN && st.size < maxBytes || st.f == nil {
			st.mu.Unlock()
			return nil
		}
		if err := st.failed; err != nil {
			st.mu.Unlock()
			return err
		}
		if st.room == nil {
			st.room = make(chan struct{})
		}
		room := st.room
		st.mu.Unlock()
		st.wake()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pace is how long an Append of n records waits before staging them
// once more than half of maxN records or maxBytes are staged: from none at
// half to twice the time the last move took for n records when full.
// DuckDB behind, Appends then slow down to what the mover takes, each a
// little, where the hard limit of waitRoom held one in a hundred for
// the rest of a move (up to a second; p99 290 ms at 2M records).
func (st *stage) pace(n, maxN int, maxBytes int64) time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rate <= 0 {
		return 0
	}
	over := max(float64(st.count)/float64(maxN), float64(st.size)/float64(maxBytes))*2 - 1
	if over <= 0 {
		return 0
	}
	return time.Duration(min(over, 1) * 2 * float64(n) / st.rate * float64(time.Second))
}

// openRoom releases the Appends in waitRoom. The caller holds mu.
func (st *stage) openRoom() {
	if st.room != nil {
		close(st.room)
		st.room = nil
	}
}

// marks returns the count of records ever staged and of those moved.
func (st *stage) marks() (put, moved int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.putN, st.movedN
}

// staged reports how many records wait, their frames' bytes and since
// when.
func (st *stage) staged() (int, int64, time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.count, st.size, st.since
}

// take hands the staged records to a move and starts a new segment; the
// segments they are in are returned, to remove once they are stored;
// none when nothing is staged.
func (st *stage) take() (t taken, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.count == 0 {
		return taken{upTo: st.putN}, nil
	}
	if st.f != nil {
		if err := st.rotate(); err != nil {
			return taken{}, err
		}
	}
	t = taken{frames: st.frames, bufs: st.bufs, seq0s: st.seq0s, tails: st.tails, n: st.count, segments: st.old, upTo: st.putN}
	st.inflight = st.tails
	st.frames, st.bufs, st.seq0s, st.tails, st.old, st.count, st.size = nil, nil, nil, nil, nil, 0, 0
	st.openRoom()
	return t, nil
}

// taken is what take hands a move: the frames (and their buffers, for
// the pool once the records are stored), n records in all, the segments
// they are in, and the count of records ever staged they bring the store
// up to.
type taken struct {
	frames   []string
	bufs     []*[]byte
	seq0s    []int64
	tails    []*tail
	n        int
	segments []string
	upTo     int64
}

// done records that the records staged before upTo are in DuckDB, by a
// move of n records that took d.
func (st *stage) done(upTo int64, n int, d time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if d > 0 {
		st.rate = float64(n) / d.Seconds()
	}
	st.failed = nil
	st.movedN = max(st.movedN, upTo)
}

// giveBack returns what a failed move took: it goes before whatever was
// staged meanwhile.
func (st *stage) giveBack(t taken, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failed = err
	st.openRoom()
	st.inflight = nil
	st.frames = append(t.frames, st.frames...)
	st.bufs = append(t.bufs, st.bufs...)
	st.seq0s = append(t.seq0s, st.seq0s...)
	st.tails = append(t.tails, st.tails...)
	st.count += t.n
	for i, f := range t.frames {
		st.size += frameBytes(f, t.bufs[i])
	}
	st.old = append(t.segments, st.old...)
	st.since = time.Now()
}

// close closes the current segment; later puts fail with ErrClosed. An
// empty segment is removed.
func (st *stage) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.f == nil {
		return
	}
	name := st.f.Name()
	st.f.Close()
	st.f = nil
	st.openRoom()
	if st.count == 0 {
		os.Remove(name)
	} else {
		st.old = append(st.old, name)
	}
}

// removeSegments deletes moved segments.
func removeSegments(paths []string) error {
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// move stores what is staged in DuckDB, in one transaction, and deletes
// its segments. With nothing staged it returns at once.
func (s *Store) move(ctx context.Context) error { return s.moveUpTo(ctx, -1) }

// moveUpTo is move for a caller that needs only the first upTo records
// ever staged in DuckDB (-1: all): if the move it waited for took them
// in, it returns without another.
func (s *Store) moveUpTo(ctx context.Context, upTo int64) error {
	st := s.stage
	if st == nil {
		return nil
	}
	st.moveMu.Lock()
	defer st.moveMu.Unlock()
	if _, moved := st.marks(); upTo >= 0 && moved >= upTo {
		return nil
	}
	t, err := st.take()
	if err != nil || len(t.frames) == 0 {
		return err
	}
	// The taken frames' tails in their tables (or lost), for appendTails.
	if err := st.flushTails(); err != nil {
		s.log.Warn("connlog/duckdb: inserting tail rows; the move reads the frames", "err", err)
	}
	// In chunks of about MoveChunkBytes of frames, a transaction each:
	// the move's memory (its Arrow columns) is a chunk's, not the whole
	// stage's, and a chunk's frames go back to the
	// pool for the Appends as soon as it is stored. Exactly once still
	// holds when a later chunk fails, or the process dies, before the
	// segments are removed: the stored records come back at the retry or
	// the replay and are skipped as repeats (append's dedup).
	start := time.Now()
	var rs rows
	moved := 0
	for lo := 0; lo < len(t.frames); {
		hi, bytes := lo, int64(0)
		for hi < len(t.frames) && (hi == lo || bytes+frameBytes(t.frames[hi], t.bufs[hi]) <= s.o.MoveChunkBytes) {
			bytes += frameBytes(t.frames[hi], t.bufs[hi])
			hi++
		}
		// Frames with tails are stored from them (their columns made by
		// the Appends: tail.go); others are read here.
		tails := t.tails[lo:hi]
		fromTails := st.inTables(tails)
		rs.reset()
		for i, f := range t.frames[lo:hi] {
			if fromTails {
				break
			}
			if err := rs.add(f, t.seq0s[lo+i]); err != nil {
				// A frame this process encoded: a bug. Its records stay in
				// the segments, for the replay to try at the next Open.
				return fmt.Errorf("connlog/duckdb: staged batch: %w", err)
			}
		}
		s.writeMu.Lock()
		busy := time.Now()
		n := rs.len()
		if fromTails {
			err = s.appendTails(ctx, tails)
			n = 0
			for _, tl := range tails {
				n += tl.n
			}
		} else {
			err = s.append(ctx, &rs)
		}
		since(&s.stats.moveBusy, busy)
		s.stats.moves.Add(1)
		s.writeMu.Unlock()
		if err != nil {
			err = fmt.Errorf("connlog/duckdb: moving %d staged records: %w", t.n-moved, err)
			st.giveBack(taken{frames: t.frames[lo:], bufs: t.bufs[lo:], seq0s: t.seq0s[lo:], tails: t.tails[lo:], n: t.n - moved, segments: t.segments, upTo: t.upTo}, err)
			return err
		}
		moved += n
		// Nothing of the chunk's frames is kept (resource tuples are
		// cloned, resAssigner) when their buffers go back.
		rs.reset()
		for _, b := range t.bufs[lo:hi] {
			if b != nil {
				putBuf(b)
			}
		}
		st.retire(t.tails[lo:hi])
		lo = hi
	}
	st.done(t.upTo, moved, time.Since(start))
	var gens []int
	for _, tl := range t.tails {
		if tl != nil && !slices.Contains(gens, tl.gen) {
			gens = append(gens, tl.gen)
		}
	}
	if len(gens) > 0 {
		s.writeMu.Lock()
		s.dropTails(ctx, gens)
		s.writeMu.Unlock()
	}
	if err := removeSegments(t.segments); err != nil {
		// Stored already: a segment left behind is replayed at Open and
		// its records skipped as repeats.
		s.log.Warn("connlog/duckdb: removing moved stage segments", "err", err)
	}
	return nil
}

// sync moves what is staged, for a reader that must see every record an
// Append returned for.
func (s *Store) sync(ctx context.Context) error {
	if s.stage == nil {
		return nil
	}
	put, moved := s.stage.marks()
	if moved >= put {
		return nil
	}
	return s.moveUpTo(ctx, put)
}

// mover moves staged records in the background until Close. It sleeps
// until an Append stages the first record (no wake-ups while the log is
// quiet), then until MoveInterval after it or until MoveRecords wait.
func (s *Store) mover() {
	defer s.done.Done()
	st := s.stage
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		n, _, since := st.staged()
		due := n >= s.o.MoveRecords || (n > 0 && time.Since(since) >= s.o.MoveInterval)
		if !due {
			var wait <-chan time.Time
			if n > 0 {
				timer.Reset(s.o.MoveInterval - time.Since(since))
				wait = timer.C
			} else {
				dropPool() // idle: no buffers kept
			}
			select {
			case <-s.stop:
				return
			case <-st.kick:
			case <-wait:
			}
			timer.Stop()
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := s.move(ctx)
		cancel()
		if err != nil {
			s.log.Warn("connlog/duckdb: move failed; retrying", "err", err)
			select {
			case <-s.stop:
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// replay stores the records of segments a crash (or a failed move at
// Close) left behind, in transactions of up to MoveRecords, and deletes
// the segments. A segment's torn last frame (a batch whose Append never
// returned) is dropped.
func (s *Store) replay(ctx context.Context, segments []string) error {
	var batch rows
	flush := func() error {
		if batch.len() == 0 {
			return nil
		}
		s.writeMu.Lock()
		err := s.append(ctx, &batch)
		s.writeMu.Unlock()
		batch.reset()
		return err
	}
	total := 0
	for _, p := range segments {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for len(data) > 0 {
			payload, rest, err := splitFrame(data)
			if err == nil {
				n := batch.len()
				err = batch.add(payload, s.seq+1+int64(n))
				total += batch.len() - n
			}
			if err != nil {
				s.log.Warn("connlog/duckdb: stage segment ends in a torn batch (an Append that did not return); dropped", "segment", p, "bytes", len(data), "err", err)
				break
			}
			data = rest
			if batch.len() >= s.o.MoveRecords {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		// The batch's payloads are data's memory: stored before the next
		// segment is read.
		if err := flush(); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(segments) > 0 {
		s.log.Info("connlog/duckdb: stored the records staged before the last stop", "segments", len(segments), "records", total)
	}
	return removeSegments(segments)
}

// Flush moves what is staged into DuckDB now (readers of the Store do it
// themselves; this is for those that query DB directly, like the
// benchmarks).
func (s *Store) Flush(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.sync(ctx)
}
