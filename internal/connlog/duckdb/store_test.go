//go:build cgo

package duckdb_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/duckdb"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
)

func openTemp(t testing.TB) *duckdb.Store {
	t.Helper()
	s, err := duckdb.Open(context.Background(), filepath.Join(t.TempDir(), "logs.duckdb"), duckdb.Options{MemoryLimit: 128 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openAt opens (or reopens) the store at path with compaction left to
// the test (CompactAfter -1).
func openAt(t testing.TB, path string) *duckdb.Store {
	t.Helper()
	s, err := duckdb.Open(context.Background(), path, duckdb.Options{MemoryLimit: 128 << 20, CompactAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	logstoretest.Run(t, func(t *testing.T) connlog.LogStore { return openTemp(t) })
}

func TestContractInMemory(t *testing.T) {
	logstoretest.Run(t, func(t *testing.T) connlog.LogStore {
		s, err := duckdb.Open(context.Background(), ":memory:", duckdb.Options{MemoryLimit: 128 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
