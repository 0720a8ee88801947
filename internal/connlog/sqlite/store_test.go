package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
)

func openTemp(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "logs.db"))
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
		s, err := sqlite.Open(context.Background(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
