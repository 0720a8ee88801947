package sqlite_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tether-hub/tether/internal/connlog/sqlite"
)

// Issue 17 item 1: a read query runs under the value and column limits, which go away with
// it: the pool's connections (the write connection comes from the same
// pool) keep SQLite's defaults.
func TestReadQueryLimits(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	settings := func(c *sql.Conn) (length, cols int, queryOnly, cache, temp string) {
		t.Helper()
		length, _ = msqlite.Limit(c, sqlite3.SQLITE_LIMIT_LENGTH, -1)
		cols, _ = msqlite.Limit(c, sqlite3.SQLITE_LIMIT_COLUMN, -1)
		for p, v := range map[string]*string{"query_only": &queryOnly, "cache_size": &cache, "temp_store": &temp} {
			if err := c.QueryRowContext(ctx, "PRAGMA "+p).Scan(v); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	c, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l0, c0, q0, cs0, t0 := settings(c)
	c.Close()

	big := "SELECT length(printf('%.*c', ?1, 'x'))"
	var n int64
	scanOne := func(rows *sql.Rows) error {
		rows.Next()
		return rows.Scan(&n)
	}
	if err := s.ReadQuery(ctx, big, []any{sqlite.MaxReadValue - 1}, scanOne); err != nil || n != sqlite.MaxReadValue-1 {
		t.Fatalf("a value within the limit: %d, %v", n, err)
	}
	if err := s.ReadQuery(ctx, big, []any{sqlite.MaxReadValue + 1}, scanOne); err == nil || !strings.Contains(err.Error(), "too big") {
		t.Fatalf("a value past the limit: %v", err)
	}
	cols := "SELECT 1" + strings.Repeat(", 1", sqlite.MaxReadColumns)
	if err := s.ReadQuery(ctx, cols, nil, func(*sql.Rows) error { return nil }); err == nil || !strings.Contains(err.Error(), "too many columns") {
		t.Fatalf("%d columns: %v", sqlite.MaxReadColumns+1, err)
	}
	if err := s.ReadQuery(ctx, "CREATE TABLE x (a)", nil, func(*sql.Rows) error { return nil }); err == nil {
		t.Fatal("a read query wrote")
	}

	c, err = s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l1, c1, q1, cs1, t1 := settings(c)
	if l1 != l0 || c1 != c0 || q1 != q0 || cs1 != cs0 || t1 != t0 {
		t.Errorf("pool connection after read queries: length %d columns %d query_only %s cache %s temp %s; before: %d %d %s %s %s",
			l1, c1, q1, cs1, t1, l0, c0, q0, cs0, t0)
	}
	if l0 <= sqlite.MaxReadValue || c0 <= sqlite.MaxReadColumns {
		t.Errorf("SQLite's defaults %d/%d are not above the read limits", l0, c0)
	}
}
