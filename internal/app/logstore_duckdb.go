//go:build cgo && !sqlitelog

package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tether-hub/tether/internal/connlog/duckdb"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
	"github.com/tether-hub/tether/internal/kql"
	kqlduckdb "github.com/tether-hub/tether/internal/kql/duckdb"
)

// LogFile is the Connections log database inside the data dir.
const LogFile = DuckDBLogFile

// LogStoreKind names the build's log store.
const LogStoreKind = "duckdb"

// logDialect is the KQL dialect of the log store.
var logDialect kql.Dialect = kqlduckdb.Dialect{}

// OpenLogStore opens the log store of the data dir dir, after migrating
// a SQLite log found there (MigrateSQLiteLog).
func OpenLogStore(ctx context.Context, dir string, o LogStoreOptions) (LogStore, error) {
	s, err := openDuckDB(ctx, filepath.Join(dir, LogFile), o)
	if err != nil {
		return nil, err
	}
	if err := migrateInto(ctx, s, dir, o.Progress); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func openDuckDB(ctx context.Context, path string, o LogStoreOptions) (*duckdb.Store, error) {
	s, err := duckdb.Open(ctx, path, duckdb.Options{MemoryLimit: o.Memory})
	if err != nil {
		return nil, err
	}
	if err := kqlduckdb.Register(ctx, s.DB()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// MigrateSQLiteLog copies the SQLite log of the data dir dir (logs.db)
// into its DuckDB log, reporting progress (first 0 of the total, then after
// each batch), and renames it logs.db.migrated
// once every record is in. Nothing to migrate is no error. A migration
// that stops half-way (crash, Ctrl-C) resumes where the DuckDB store
// stands: records it holds already are skipped.
func MigrateSQLiteLog(ctx context.Context, dir string, o LogStoreOptions) error {
	s, err := openDuckDB(ctx, filepath.Join(dir, LogFile), o)
	if err != nil {
		return err
	}
	defer s.Close()
	return migrateInto(ctx, s, dir, o.Progress)
}

// migrateBatch is how many records one step of the migration reads and
// appends (a variable for tests).
var migrateBatch = 20_000

func migrateInto(ctx context.Context, dst *duckdb.Store, dir string, progress func(done, total int64)) error {
	path := filepath.Join(dir, SQLiteLogFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	src, err := sqlite.Open(ctx, path)
	if err != nil {
		return fmt.Errorf("log migration: %w", err)
	}
	defer src.Close()
	total, err := src.Count(ctx)
	if err != nil {
		return fmt.Errorf("log migration: %w", err)
	}
	if progress != nil {
		progress(0, total)
	}
	var done, after int64
	for {
		recs, last, err := src.Scan(ctx, after, migrateBatch)
		if err != nil {
			return fmt.Errorf("log migration: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		if err := dst.Append(ctx, recs); err != nil {
			return fmt.Errorf("log migration: %w", err)
		}
		done += int64(len(recs))
		after = last
		if progress != nil {
			progress(done, total)
		}
	}
	if err := src.Close(); err != nil {
		return err
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, path+".migrated"+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("log migration: %w", err)
		}
	}
	return nil
}
