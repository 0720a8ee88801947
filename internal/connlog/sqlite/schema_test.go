package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
)

func TestPragmas(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	// database/sql may hand out any pooled connection: pin one.
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mode string
	var sync int
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 1 {
		t.Errorf("journal_mode=%s synchronous=%d, want wal and 1 (NORMAL)", mode, sync)
	}
}

// TestWriterPragmas: the write connection has its ingest settings, and
// the pool keeps SQLite's defaults.
func TestWriterPragmas(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	want := map[string]string{"cache_size": "-32768", "wal_autocheckpoint": "10000", "journal_size_limit": "67108864", "synchronous": "1"}
	for name, v := range want {
		got, err := sqlite.WriterPragma(s, name)
		if err != nil || got != v {
			t.Errorf("write connection: PRAGMA %s = %q, %v; want %q", name, got, err, v)
		}
	}
	var cache int
	if err := s.DB().QueryRow("PRAGMA cache_size").Scan(&cache); err != nil || cache != -2000 {
		t.Errorf("pool: cache_size %d, %v; want the default -2000", cache, err)
	}
}

func TestChunkSize(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 100: 64, 511: 256, 512: 512, 513: 512, 5000: 512} {
		if got := sqlite.ChunkSize(n); got != want {
			t.Errorf("chunkSize(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestAppendCanceledMidway: an Append whose context ends during the
// transaction stores nothing, and the store goes on working.
func TestAppendCanceledMidway(t *testing.T) {
	for _, path := range []string{"file", ":memory:"} {
		t.Run(path, func(t *testing.T) {
			var s *sqlite.Store
			if path == "file" {
				s = openTemp(t)
			} else {
				var err error
				if s, err = sqlite.Open(context.Background(), path); err != nil {
					t.Fatal(err)
				}
			}
			defer s.Close()
			rs := logstoretest.Records(30_000, logstoretest.T0)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := s.Append(ctx, rs); err == nil {
				t.Skip("the append finished within 20ms; nothing to check")
			}
			if got, err := s.Find(context.Background(), connlog.Filter{}); err != nil || len(got) != 0 {
				t.Fatalf("after a canceled Append: %d records, %v; want none", len(got), err)
			}
			if err := s.Append(context.Background(), rs[:700]); err != nil {
				t.Fatalf("Append after a canceled one: %v", err)
			}
			if got, err := s.Find(context.Background(), connlog.Filter{}); err != nil || len(got) != 700 {
				t.Fatalf("after a canceled Append and a good one: %d records, %v; want 700", len(got), err)
			}
		})
	}
}

func TestColumnsAndIndexes(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	rows, err := s.DB().QueryContext(ctx, "SELECT name FROM pragma_table_xinfo('AzureDiagnostics')")
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		cols = append(cols, n)
	}
	rows.Close()
	for _, c := range connlog.Columns {
		if !slices.Contains(cols, c.Name) {
			t.Errorf("table AzureDiagnostics lacks column %s (has %v)", c.Name, cols)
		}
	}
	idx := map[string]string{}
	rows, err = s.DB().QueryContext(ctx, `SELECT il.name, group_concat(ii.name, ',') FROM pragma_index_list('AzureDiagnostics') il, pragma_index_info(il.name) ii GROUP BY il.name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, cols string
		rows.Scan(&name, &cols)
		idx[cols] = name
	}
	rows.Close()
	for _, want := range []string{"Category,TimeGenerated", "DeviceId,TimeGenerated", "TimeGenerated", "_ItemId"} {
		if _, ok := idx[want]; !ok {
			t.Errorf("no index on (%s); indexes: %v", want, idx)
		}
	}
}

// TestQueryPlans checks that the filters of Find and the portal's queries
// use the indexes rather than scanning.
func TestQueryPlans(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	cases := map[string]string{
		"SELECT * FROM AzureDiagnostics WHERE DeviceId = 'd' AND TimeGenerated >= 0 ORDER BY TimeGenerated DESC, rowid DESC LIMIT 10": "AzureDiagnostics_DeviceId_Time",
		"SELECT * FROM AzureDiagnostics WHERE Category = 'Connections' AND TimeGenerated >= 0":                                        "AzureDiagnostics_Category_Time",
		"SELECT * FROM AzureDiagnostics WHERE TimeGenerated < 5":                                                                      "AzureDiagnostics_Time",
	}
	for q, want := range cases {
		rows, err := s.DB().Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "; "), want) {
			t.Errorf("%s\nplan %q does not use %s", q, plan, want)
		}
	}
}

func TestResourceIDVirtualColumn(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	rs := logstoretest.Records(3, logstoretest.T0)
	if err := s.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	var n int
	err := s.DB().QueryRow("SELECT count(*) FROM AzureDiagnostics WHERE _ResourceId = ? AND ResourceId = _ResourceId", rs[0].ResourceID).Scan(&n)
	if err != nil || n != 3 {
		t.Fatalf("rows with _ResourceId = ResourceId: %d, %v; want 3", n, err)
	}
}

func TestReopenKeepsRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	rs := logstoretest.Records(25, logstoretest.T0)
	if err := s.Append(ctx, rs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append(ctx, rs); err != nil { // redelivered after a restart
		t.Fatal(err)
	}
	got, err := s.Find(ctx, connlog.Filter{})
	if err != nil || len(got) != len(rs) {
		t.Fatalf("after reopen: %d records, %v; want %d", len(got), err, len(rs))
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := sqlite.Open(ctx, path); err == nil {
		s.Close()
		t.Fatal("Open accepted a database of schema version 99")
	}
}

// TestOpenOddPath: the file name goes into a URI; characters that mean
// something there must still name the file.
func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "logs.db")
	s, err := sqlite.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("database not at %s: %v", p, err)
	}
}

// TestPageSize: a new database gets 16 KiB pages, in WAL mode; one made
// with another page size keeps it (and its records) when opened again.
func TestPageSize(t *testing.T) {
	ctx := context.Background()
	pageSize := func(s *sqlite.Store) (size int, mode string) {
		t.Helper()
		if err := s.DB().QueryRow("PRAGMA page_size").Scan(&size); err != nil {
			t.Fatal(err)
		}
		if err := s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		return size, mode
	}
	s := openTemp(t)
	defer s.Close()
	if size, mode := pageSize(s); size != 16384 || mode != "wal" {
		t.Errorf("new database: page_size %d, journal_mode %s; want 16384, wal", size, mode)
	}

	path := filepath.Join(t.TempDir(), "old.db")
	restore := sqlite.SetPageSize(4096)
	old, err := sqlite.Open(ctx, path)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Append(ctx, logstoretest.Records(10, logstoretest.T0)); err != nil {
		t.Fatal(err)
	}
	old.Close()
	again, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if size, mode := pageSize(again); size != 4096 || mode != "wal" {
		t.Errorf("reopened database: page_size %d, journal_mode %s; want 4096, wal", size, mode)
	}
	if got, err := again.Find(ctx, connlog.Filter{}); err != nil || len(got) != 10 {
		t.Errorf("reopened database: %d records, %v", len(got), err)
	}
}
