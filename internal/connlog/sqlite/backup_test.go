package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/sqlite"
)

// A backup taken while batches are appended opens as a store holding
// whole batches only: every record of a batch committed before it, none
// of one that was not.
func TestBackupToWhileAppending(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const batch = 50
	if err := s.Append(ctx, stormRecords(batch, t0, 0)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Append(ctx, stormRecords(batch, t0, i*batch)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := s.BackupTo(ctx, path); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	c, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recs, err := c.Find(ctx, connlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < batch || len(recs)%batch != 0 {
		t.Fatalf("the copy holds %d records: not whole batches of %d", len(recs), batch)
	}
	if err := s.BackupTo(ctx, path); err == nil {
		t.Fatal("backup over an existing file")
	}
}
