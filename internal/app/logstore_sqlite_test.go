//go:build sqlitelog

package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/app"
)

// A SQLite build refuses a data dir whose log is DuckDB's, naming both
// ways on, and creates nothing beside it.
func TestSQLiteBuildRefusesADuckDBLog(t *testing.T) {
	dir := t.TempDir()
	duck := filepath.Join(dir, app.DuckDBLogFile)
	if err := os.WriteFile(duck, []byte("a DuckDB log"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := app.OpenLogStore(context.Background(), dir, app.LogStoreOptions{})
	if err == nil {
		s.Close()
		t.Fatal("a SQLite build opened a data dir holding a DuckDB log")
	}
	for _, want := range []string{"DuckDB log", "-tags sqlitelog", "move " + duck} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, app.SQLiteLogFile)); !os.IsNotExist(err) {
		t.Errorf("the refused start left %s (%v)", app.SQLiteLogFile, err)
	}
	if b, _ := os.ReadFile(duck); string(b) != "a DuckDB log" {
		t.Errorf("the DuckDB log changed: %q", b)
	}
}
