package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/tether-hub/tether/internal/connlog"
)

// Store is a connlog.LogStore in one SQLite file.
type Store struct {
	db     *sql.DB
	closed atomic.Bool
	// writeMu serialises Append and DeleteBefore: SQLite has one writer,
	// and waiting here is cheaper and fairer than busy retries.
	writeMu sync.Mutex
	// insertFull is the prepared INSERT of a full chunk (chunkRows rows).
	insertFull *sql.Stmt
}

var _ connlog.LogStore = (*Store)(nil)

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("connlog/sqlite: store closed")

// Open opens (creating if needed) the database file at path and its
// schema. path ":memory:" gives a private in-memory database, for tests.
func Open(ctx context.Context, path string) (*Store, error) {
	memory := path == ":memory:"
	params := url.Values{}
	params.Add("_pragma", "busy_timeout(10000)")
	params.Add("_pragma", "foreign_keys(off)")
	if !memory {
		params.Add("_pragma", "journal_mode(WAL)")
		params.Add("_pragma", "synchronous(NORMAL)")
	}
	params.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + params.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("connlog/sqlite: open %s: %w", path, err)
	}
	if memory {
		// Every connection to :memory: is a database of its own.
		db.SetMaxOpenConns(1)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("connlog/sqlite: schema of %s: %w", path, err)
	}
	s := &Store{db: db}
	if s.insertFull, err = db.PrepareContext(ctx, insertSQL(chunkRows)); err != nil {
		db.Close()
		return nil, fmt.Errorf("connlog/sqlite: prepare insert: %w", err)
	}
	return s, nil
}

// Close closes the database after running writes finish; later calls
// return ErrClosed. Closing twice is harmless.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.insertFull.Close()
	return s.db.Close()
}

// DB exposes the database for a query engine compiling KQL to SQL; use it
// read-only.
func (s *Store) DB() *sql.DB { return s.db }
