//go:build cgo

package kql_test

import (
	"context"
	"testing"

	logduckdb "github.com/tether-hub/tether/internal/connlog/duckdb"
	"github.com/tether-hub/tether/internal/kql"
	kqlduckdb "github.com/tether-hub/tether/internal/kql/duckdb"
)

func init() {
	scriptStores = append(scriptStores, scriptStore{"duckdb", openDuckDBScript})
}

func openDuckDBScript(t *testing.T) (scriptDB, kql.Dialect) {
	store, err := logduckdb.Open(context.Background(), ":memory:", logduckdb.Options{MemoryLimit: 128 << 20, Threads: 1}) // one thread: rows in storage order, as SQLite returns them (the scripts take the first N of unsorted results)
	if err != nil {
		t.Fatal(err)
	}
	if err := kqlduckdb.Register(context.Background(), store.DB()); err != nil {
		t.Fatal(err)
	}
	return store, kqlduckdb.Dialect{}
}
