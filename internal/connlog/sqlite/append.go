package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/tether-hub/tether/internal/connlog"
)

// chunkRows is the most rows one INSERT carries: 512 × 25 columns stays
// under SQLite's 32766 bound parameters, and multi-row VALUES insert
// ~1.5× faster than single rows (deps.md §4).
const chunkRows = 512

// insertSQL inserts rows records, skipping those whose _ItemId is stored.
// Columns come in insertOrder, the shared ones (sharedColumns) first.
// With shared, all rows take the shared values from parameters ?1…?10,
// bound once; each row's own values follow as anonymous parameters,
// which SQLite numbers on from there. (Numbering every parameter instead
// would make binding quadratic: the driver looks up each parameter's name,
// and SQLite searches a list of the named ones.)
//
// OR IGNORE rather than ON CONFLICT(_ItemId) DO NOTHING: the only
// constraint that can fail is the unique _ItemId (strings are bound as
// text, never NULL), so both skip exactly the known ids; but with OR
// IGNORE no row can abort the statement, so SQLite keeps no statement
// journal (a copy of every page the INSERT changes) for a multi-row
// INSERT.
func insertSQL(rows int, shared bool) string {
	names := make([]string, len(insertOrder))
	for j, i := range insertOrder {
		names[j] = storedColumns[i].Name
	}
	var row strings.Builder
	row.WriteByte('(')
	for j := range insertOrder {
		if j > 0 {
			row.WriteByte(',')
		}
		if shared && j < len(sharedColumns) {
			row.WriteString("?" + strconv.Itoa(j+1))
		} else {
			row.WriteByte('?')
		}
	}
	row.WriteByte(')')
	var b strings.Builder
	b.WriteString("INSERT OR IGNORE INTO " + table + " (" + strings.Join(names, ", ") + ") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row.String())
	}
	return b.String()
}

// chunkSize is how many of n remaining records the next INSERT carries:
// the largest power of two ≤ min(n, chunkRows), so every batch size is
// served by at most log2(chunkRows)+1 prepared statements.
func chunkSize(n int) int {
	return 1 << (bits.Len(uint(min(n, chunkRows))) - 1)
}

// insertKey names a prepared INSERT: its rows, and whether they share
// the shared columns' values.
type insertKey struct {
	rows   int
	shared bool
}

// insert returns the prepared INSERT k on w.
func (s *Store) insert(ctx context.Context, w *sql.Conn, k insertKey) (*sql.Stmt, error) {
	if st, ok := s.inserts[k]; ok {
		return st, nil
	}
	st, err := w.PrepareContext(ctx, insertSQL(k.rows, k.shared))
	if err != nil {
		return nil, err
	}
	s.inserts[k] = st
	return st, nil
}

// Append stores records in one transaction, skipping known _ItemIds.
func (s *Store) Append(ctx context.Context, records []connlog.Record) error {
	if len(records) == 0 {
		return ctx.Err()
	}
	for i := range records {
		if err := records[i].Validate(); err != nil {
			return err
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	err := s.inTx(ctx, func(w *sql.Conn) error {
		defer clear(s.args) // no references to the batch stay behind
		for rest := records; len(rest) > 0; {
			chunk := rest[:chunkSize(len(rest))]
			rest = rest[len(chunk):]
			k := insertKey{rows: len(chunk), shared: sameShared(chunk)}
			st, err := s.insert(ctx, w, k)
			if err != nil {
				return err
			}
			s.args = s.args[:0]
			if k.shared {
				s.args = appendShared(s.args, &chunk[0])
			}
			for i := range chunk {
				s.args = appendValues(s.args, &chunk[i], k.shared)
			}
			if _, err := st.ExecContext(ctx, s.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("connlog/sqlite: append: %w", err)
	}
	return nil
}

// inTx runs fn in a write transaction on the write connection: BEGIN
// IMMEDIATE takes the write lock up front, COMMIT ends it, any error rolls
// it back. The caller holds writeMu.
//
// The transaction is plain SQL on a pinned connection rather than a
// database/sql Tx: a Tx would prepare the statements again for every
// transaction (Tx.Stmt re-prepares a statement of a Conn).
func (s *Store) inTx(ctx context.Context, fn func(w *sql.Conn) error) error {
	w, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := w.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		// The context may have ended just after SQLite began the
		// transaction (the driver then reports the context's error).
		s.rollback(ctx, w)
		return err
	}
	if err = fn(w); err == nil {
		_, err = w.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		// An interrupt (ctx ended) may have rolled back already; a
		// connection that may still be inside a transaction is closed
		// (which rolls it back) rather than reused (rollback).
		if s.rollback(ctx, w) {
			s.checkConn(err)
		}
		return err
	}
	return nil
}

// rollback ends any transaction on the write connection w and reports
// whether w is still usable: a ROLLBACK that fails for another reason
// than there being no transaction (an interrupt rolls back by itself)
// drops the connection, which rolls it back.
func (s *Store) rollback(ctx context.Context, w *sql.Conn) bool {
	_, err := w.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	if err == nil || strings.Contains(err.Error(), "no transaction is active") {
		return true
	}
	s.dropWriter()
	return false
}
