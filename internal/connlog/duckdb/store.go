//go:build cgo

package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/tether-hub/tether/internal/connlog"
)

// Store is a connlog.LogStore in one DuckDB file.
//
// Writes (Append, DeleteBefore, the swap at the end of a compaction) go
// through one connection of their own under writeMu; Find and ReadQuery
// read through the pool. DuckDB's MVCC gives readers a snapshot, so
// queries never wait for ingest.
type Store struct {
	db     *sql.DB
	log    *slog.Logger
	closed atomic.Bool

	// writeMu serialises writes and guards the fields below.
	writeMu sync.Mutex
	w       *sql.Conn
	tables  []string // day tables, oldest first (the view's branches)
	seq     int64    // the last _Seq given
	hwm     int64    // the newest TimeGenerated stored (Unix ns); see Append
	// resources are tether_resources' tuples by id, resIndex the reverse.
	resources []resTuple
	resIndex  map[resTuple]uint16

	stop chan struct{} // closes the background loops
	done sync.WaitGroup
	// stage holds appended records until they are in DuckDB (stage.go);
	// nil in memory.
	stage *stage
	// wal counts bytes appended since the last checkpoint (estimate);
	// ckpt wakes the background loop when it is due (checkpoint.go).
	wal   atomic.Int64
	ckpt  chan struct{}
	o     Options
	stats counters // Stats
	// resSnap is the stored resource tuples as of the last commit that
	// added one, for Appends building a tail batch (tail.go) without
	// writeMu.
	resSnap atomic.Pointer[resSnapshot]
	// tailConn inserts the tails (tail.go), under the stage's tailMu.
	tailConn *sql.Conn
}

// resSnapshot is a copy of the Store's resource tuples and their index.
type resSnapshot struct {
	list  []resTuple
	index map[resTuple]uint16
}

// publishResources sets resSnap to the current tuples. The caller holds
// writeMu (or is Open).
func (s *Store) publishResources() {
	s.resSnap.Store(&resSnapshot{list: s.resources, index: maps.Clone(s.resIndex)})
}

var _ connlog.LogStore = (*Store)(nil)

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("connlog/duckdb: store closed")

// Options tune a Store. Zero fields take the defaults.
type Options struct {
	// MemoryLimit is the store's memory budget in bytes (tether serve
	// --log-memory); default DefaultMemoryLimit. Half of it is DuckDB's
	// memory_limit (the buffer pool, sorts, hash tables); a sixteenth may
	// wait in the stage (MaxStagedBytes), and a move takes them in chunks
	// of half that (MoveChunkBytes); the rest is for what DuckDB
	// allocates outside its pool (a move's rows before they are
	// compressed, query results, its allocator's free pages: 70-400 MiB
	// measured at 1 GiB), the move's Go memory and the pool of buffers.
	MemoryLimit int64
	// Threads is DuckDB's threads; default 1: a move's INSERT and the
	// checkpoint run on the goroutine's thread, where DuckDB's second
	// worker cost more CPU a record in task hand-offs than it saved
	// (logbench 2M, same quiet window: 14.0 → 10.8 µs a record of the
	// store's CPU, the queries' times alike), and the hub keeps a core for
	// its other work. Queries then scan on one thread.
	Threads int
	// CheckpointBytes is how much appended data (estimated) triggers a
	// background checkpoint; default MemoryLimit/4, at least 64 MiB. A
	// checkpoint rewrites each table's last, partial row group whatever
	// was appended, and a move's commit waits for it: every 256 MiB
	// instead of 64 at a 1 GiB budget halved the checkpoints' time
	// (logbench 2M: 6 → 3 s) and left the RSS peak as it was.
	CheckpointBytes int64
	// TailBatch is how many pending tail records wake the tail inserter
	// (tail.go); default defaultTailBatch (the build's).
	TailBatch int
	// MoveRecords is how many staged records (stage.go) make the mover
	// take them into DuckDB in one transaction; MoveInterval how long a
	// staged record waits at most; MaxStaged how many may wait before
	// Append waits for the mover (back-pressure; a reader waits for the
	// move of what is staged).
	// Defaults 25,000, 1 s and 100,000.
	MoveRecords  int
	MoveInterval time.Duration
	MaxStaged    int
	// MaxStagedBytes bounds the staged batches' bytes in memory the same
	// way (back-pressure); default MemoryLimit/16.
	MaxStagedBytes int64
	// MoveChunkBytes is how much of the staged batches' memory a move
	// stores in one transaction (a move of more takes several): what
	// bounds the move's own memory; default MaxStagedBytes/2.
	MoveChunkBytes int64
	// NoTail turns the stage's tail tables off (tail.go): readers move
	// what is staged before they read, and wait for the mover, as before
	// they existed. Appends then cost less CPU and memory, and a query
	// during ingest waits for a move or two (bench/README.md, session
	// 14: the measured trade).
	NoTail bool
	// CompactAfter is how long after the end of a UTC day its table is
	// sorted by device (compact.go); default 1 h. Negative: never.
	CompactAfter time.Duration
	// Now is the clock of compaction; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultMemoryLimit is Options.MemoryLimit's default: 512 MiB.
const DefaultMemoryLimit = 512 << 20

// Open opens (creating if needed) the database file at path. path
// ":memory:" gives a private in-memory database, for tests.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	if o.MemoryLimit <= 0 {
		o.MemoryLimit = DefaultMemoryLimit
	}
	if o.Threads <= 0 {
		o.Threads = 1
	}
	if o.CheckpointBytes <= 0 {
		o.CheckpointBytes = max(64<<20, o.MemoryLimit/4)
	}
	if o.TailBatch <= 0 {
		o.TailBatch = defaultTailBatch
	}
	if o.MoveRecords <= 0 {
		o.MoveRecords = 25_000
	}
	if o.MoveInterval <= 0 {
		o.MoveInterval = time.Second
	}
	if o.MaxStaged <= 0 {
		o.MaxStaged = max(100_000, o.MoveRecords)
	}
	if o.MaxStagedBytes <= 0 {
		o.MaxStagedBytes = o.MemoryLimit / 16
	}
	if o.MoveChunkBytes <= 0 {
		o.MoveChunkBytes = max(o.MaxStagedBytes/2, 1)
	}
	if path != ":memory:" {
		// The staged batches and a chunk's columns (about the size of its
		// frames) stay mapped between moves (bufpool.go).
		keepPooled(o.MaxStagedBytes + o.MoveChunkBytes)
	}
	if o.CompactAfter == 0 {
		o.CompactAfter = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	params := url.Values{}
	params.Set("memory_limit", strconv.FormatInt(max(o.MemoryLimit/2>>20, 1), 10)+"MB")
	params.Set("threads", strconv.Itoa(o.Threads))
	// Checkpoints run in the background (checkpoint.go), not inside the
	// commit that crosses the WAL threshold.
	params.Set("checkpoint_threshold", "1TB")
	dsn := path + "?" + params.Encode()
	if path == ":memory:" {
		dsn = "?" + params.Encode()
	}
	connector, err := duckdb.NewConnector(dsn, nil)
	if err != nil {
		return nil, fmt.Errorf("connlog/duckdb: open %s: %w", path, err)
	}
	db := sql.OpenDB(connector)
	s := &Store{db: db, log: o.Logger.With("component", "connlog/duckdb"), o: o, stop: make(chan struct{}), ckpt: make(chan struct{}, 1)}
	if path == ":memory:" {
		// Every pool connection of an in-memory database sees the same
		// database (one connector), but closing the last would not free
		// it before db.Close; keep them few.
		db.SetMaxIdleConns(2)
	}
	if err := s.init(ctx); err != nil {
		s.dropWriter()
		db.Close()
		return nil, fmt.Errorf("connlog/duckdb: open %s: %w", path, err)
	}
	if path != ":memory:" {
		st, segments, err := openStage(path)
		if err == nil {
			err = s.replay(ctx, segments)
		}
		if err != nil {
			if st != nil {
				st.close()
			}
			s.dropWriter()
			db.Close()
			return nil, fmt.Errorf("connlog/duckdb: open %s: staged records: %w", path, err)
		}
		st.nextSeq, st.hwm, st.tailBatch = s.seq+1, s.hwm, o.TailBatch
		if !o.NoTail {
			if err := s.openTails(ctx, st); err != nil {
				st.close()
				s.dropWriter()
				db.Close()
				return nil, fmt.Errorf("connlog/duckdb: open %s: tail tables: %w", path, err)
			}
		}
		s.stage = st
		s.done.Add(1)
		go s.mover()
		if st.insertTails != nil {
			s.done.Add(1)
			go s.tailInserter()
		}
	}
	s.done.Add(1)
	go s.background()
	return s, nil
}

// init makes the schema and loads the day tables and counters.
func (s *Store) init(ctx context.Context) error {
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	for _, q := range append(slices.Clone(metaSQL), createTableSQL(emptyTable)) {
		if _, err := w.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%w\n%s", err, q)
		}
	}
	var v string
	err = w.QueryRowContext(ctx, "SELECT value FROM tether_meta WHERE key = 'schema'").Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := w.ExecContext(ctx, "INSERT INTO tether_meta VALUES ('schema', ?)", strconv.Itoa(schemaVersion)); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if err := versionCheck(v); err != nil {
			return err
		}
	}
	if err := s.loadTables(ctx, w); err != nil {
		return err
	}
	if s.resources, err = loadResources(ctx, w); err != nil {
		return err
	}
	s.resIndex = make(map[resTuple]uint16, len(s.resources))
	for id, t := range s.resources {
		s.resIndex[t] = uint16(id)
	}
	s.publishResources()
	for _, name := range s.tables {
		// A sort that a crash or Close interrupted (compact.go).
		if _, err := w.ExecContext(ctx, "DROP TABLE IF EXISTS "+quote(name+sortingSuffix)); err != nil {
			return err
		}
	}
	if _, err := w.ExecContext(ctx, viewSQL(s.tables, s.resources)); err != nil {
		return err
	}
	if len(s.tables) > 0 {
		var seq, hwm sql.NullInt64
		if err := w.QueryRowContext(ctx, "SELECT max("+colSeq+"), max(TimeGenerated) FROM "+View).Scan(&seq, &hwm); err != nil {
			return err
		}
		s.seq, s.hwm = seq.Int64, hwm.Int64
	} else {
		s.hwm = -1 << 63
	}
	// tether_mark holds the highest _Seq stored (commit); one row.
	if _, err := w.ExecContext(ctx, "DELETE FROM "+markTable); err != nil {
		return err
	}
	if _, err := w.ExecContext(ctx, "INSERT INTO "+markTable+" VALUES (?)", s.seq); err != nil {
		return err
	}
	return nil
}

// loadTables lists the day tables, oldest first.
func (s *Store) loadTables(ctx context.Context, w *sql.Conn) error {
	rows, err := w.QueryContext(ctx, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND starts_with(table_name, ?)", tablePrefix)
	if err != nil {
		return err
	}
	defer rows.Close()
	s.tables = s.tables[:0]
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		if _, ok := tableDay(name); ok {
			s.tables = append(s.tables, name)
		}
	}
	slices.Sort(s.tables)
	return rows.Err()
}

// writer returns the write connection. The caller holds writeMu (or is
// Open).
func (s *Store) writer(ctx context.Context) (*sql.Conn, error) {
	if s.w != nil {
		return s.w, nil
	}
	w, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	s.w = w
	return w, nil
}

// dropWriter discards the write connection (one that may be inside a
// transaction is not returned to the pool).
func (s *Store) dropWriter() {
	if s.w != nil {
		_ = s.w.Raw(func(any) error { return driver.ErrBadConn })
		s.w.Close()
		s.w = nil
	}
}

// Close stops the background loops, checkpoints and closes the database;
// later calls return ErrClosed. Closing twice is harmless.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if s.stage != nil {
		// Before the background loop's last checkpoint, which then
		// writes them into the file.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := s.move(ctx); err != nil {
			s.log.Warn("connlog/duckdb: staged records left for the next Open", "err", err)
		}
		cancel()
		s.stage.close()
	}
	close(s.stop)
	s.done.Wait()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.dropWriter()
	if s.tailConn != nil {
		s.tailConn.Close()
	}
	return s.db.Close()
}

// DB exposes the database for a query engine compiling KQL to SQL; use it
// read-only.
func (s *Store) DB() *sql.DB { return s.db }
