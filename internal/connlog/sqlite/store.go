package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/tether-hub/tether/internal/connlog"
)

// Store is a connlog.LogStore in one SQLite file.
//
// Writes (Append, DeleteBefore) go through one connection of their own,
// tuned for ingest (writerPragmas) and holding the prepared INSERTs;
// Find and DB() read through the pool.
type Store struct {
	db     *sql.DB
	closed atomic.Bool
	// writeMu serialises Append and DeleteBefore, and guards the fields
	// below: SQLite has one writer, and waiting here is cheaper and fairer
	// than busy retries.
	writeMu sync.Mutex
	w       *sql.Conn               // the write connection; nil until first needed or after it broke
	inserts map[insertKey]*sql.Stmt // INSERTs prepared on w (rows a power of two ≤ chunkRows)
	args    []any                   // reused argument buffer of Append
}

var _ connlog.LogStore = (*Store)(nil)

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("connlog/sqlite: store closed")

// writerPragmas tune the write connection (measurements:
// BenchmarkAppendStorm and connlog's BenchmarkWriter):
//
//   - cache_size 32 MiB (default 2 MiB): the index pages a busy hub keeps
//     touching — (DeviceId, TimeGenerated) takes inserts all over — stay in
//     memory instead of being read back for every batch.
//   - wal_autocheckpoint 10000 pages (~40 MiB; default 1000): a page
//     rewritten by many commits between checkpoints is copied into the
//     database once; fewer checkpoints, fewer fsyncs.
//   - journal_size_limit 64 MiB: the WAL file shrinks back after a
//     checkpoint that followed an unusually large transaction.
//
// Durability is unchanged: WAL with synchronous=NORMAL, as on every
// connection.
var writerPragmas = []string{
	"PRAGMA cache_size = -32768",
	"PRAGMA wal_autocheckpoint = 10000",
	"PRAGMA journal_size_limit = 67108864",
}

// memoryDBs numbers the in-memory databases of this process.
var memoryDBs atomic.Uint64

// Open opens (creating if needed) the database file at path and its
// schema. path ":memory:" gives a private in-memory database, for tests.
func Open(ctx context.Context, path string) (*Store, error) {
	params := url.Values{}
	params.Add("_pragma", "busy_timeout(10000)")
	params.Add("_pragma", "foreign_keys(off)")
	var dsn string
	if path == ":memory:" {
		// A named memdb database: private to this Store like :memory:, but
		// shared by its connections (the write connection and the pool), so
		// it works like a file. It is freed when the last one closes.
		params.Set("vfs", "memdb")
		dsn = "file:/tether-connlog-" + strconv.FormatUint(memoryDBs.Add(1), 10) + "?" + params.Encode()
	} else {
		params.Add("_pragma", "journal_mode(WAL)")
		params.Add("_pragma", "synchronous(NORMAL)")
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + params.Encode()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("connlog/sqlite: open %s: %w", path, err)
	}
	s := &Store{db: db, inserts: map[insertKey]*sql.Stmt{}}
	// The write connection opens first: for a memdb database it is the
	// one that keeps the database alive while the pool's come and go.
	if _, err := s.writer(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connlog/sqlite: open %s: %w", path, err)
	}
	fail := func(err error) (*Store, error) {
		s.dropWriter()
		db.Close()
		return nil, fmt.Errorf("connlog/sqlite: schema of %s: %w", path, err)
	}
	if path != ":memory:" {
		if err := setPageSize(ctx, s.w); err != nil {
			return fail(err)
		}
	}
	if err := migrate(ctx, s.w); err != nil {
		return fail(err)
	}
	return s, nil
}

// writer returns the write connection, opening and tuning it if needed.
// The caller holds writeMu (or is Open).
func (s *Store) writer(ctx context.Context) (*sql.Conn, error) {
	if s.w != nil {
		return s.w, nil
	}
	w, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range writerPragmas {
		if _, err := w.ExecContext(ctx, p); err != nil {
			w.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	s.w = w
	return w, nil
}

// dropWriter closes the write connection and its statements; the next
// write opens a new one. The caller holds writeMu (or is Open or Close).
func (s *Store) dropWriter() {
	for n, st := range s.inserts {
		st.Close()
		delete(s.inserts, n)
	}
	if s.w != nil {
		// Close alone would return the driver's connection to the pool,
		// where the next writer (or a reader) could find it inside a
		// transaction; ErrBadConn from Raw makes database/sql discard it.
		_ = s.w.Raw(func(any) error { return driver.ErrBadConn })
		s.w.Close()
		s.w = nil
	}
}

// checkConn drops the write connection after an error that says it is
// unusable.
func (s *Store) checkConn(err error) {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		s.dropWriter()
	}
}

// Close closes the database after running writes finish; later calls
// return ErrClosed. Closing twice is harmless.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.dropWriter()
	return s.db.Close()
}

// DB exposes the database for a query engine compiling KQL to SQL; use it
// read-only.
func (s *Store) DB() *sql.DB { return s.db }
