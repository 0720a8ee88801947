//go:build cgo

package duckdb_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/bench/loggen"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/duckdb"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
)

const (
	crashBatches = 60
	crashBatch   = 500
	crashChild   = "TETHER_DUCKDB_CRASH_CHILD"
)

// crashRecords are the records the crash test's child appends, in
// batches of crashBatch.
func crashRecords() []connlog.Record {
	return logstoretest.Records(crashBatches*crashBatch, logstoretest.T0)
}

// The child of TestCrashDuringIngest: appends crashRecords batch by batch
// to the store at $TETHER_DUCKDB_CRASH_CHILD and prints "acked i" after
// batch i's Append returned, until killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChild)
	if path == "" {
		t.Skip("the child process of TestCrashDuringIngest")
	}
	ctx := context.Background()
	// Small moves: the kill finds records in DuckDB, moved segments and
	// staged ones.
	s, err := duckdb.Open(ctx, path, duckdb.Options{MemoryLimit: 128 << 20, MoveRecords: 3000, MoveInterval: 50 * time.Millisecond, CompactAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	recs := crashRecords()
	for i := range crashBatches {
		if err := s.Append(ctx, recs[i*crashBatch:(i+1)*crashBatch]); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acked %d\n", i)
	}
	time.Sleep(time.Minute) // the parent kills before
}

// kill -9 during ingest, then what the connlog Writer does after a
// restart: open the store and append again every batch not acked (the
// journal delivers them again), the last acked one too (a crash between
// Append and the ack). Every record is then in the store exactly once.
func TestCrashDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "logs.duckdb")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCrashChild$", "-test.count", "1")
	cmd.Env = append(os.Environ(), crashChild+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked, _ = strconv.Atoi(n)
			if acked >= crashBatches/2 {
				break
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if acked < crashBatches/2 {
		t.Fatalf("the child acked only %d batches before it ended", acked+1)
	}
	segments, _ := filepath.Glob(path + ".stage.*")
	t.Logf("killed after batch %d was acked; %d stage segments left", acked, len(segments))

	ctx := context.Background()
	s := openAt(t, path)
	defer s.Close()
	recs := crashRecords()
	got, err := s.Find(ctx, connlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range got {
		count[r.ItemID]++
	}
	for i, r := range recs[:(acked+1)*crashBatch] {
		if count[r.ItemID] != 1 {
			t.Fatalf("acked record %d (%s) is in the store %d times after the restart", i, r.ItemID, count[r.ItemID])
		}
	}
	for id, n := range count {
		if n != 1 {
			t.Fatalf("record %s is in the store %d times", id, n)
		}
	}
	t.Logf("after the restart: %d records (%d acked)", len(got), (acked+1)*crashBatch)
	for i := acked; i < crashBatches; i++ {
		if err := s.Append(ctx, recs[i*crashBatch:(i+1)*crashBatch]); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.Find(ctx, connlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("after redelivery the store holds %d records, want %d", len(got), len(recs))
	}
	for i := range got {
		if got[i].ItemID != recs[i].ItemID {
			t.Fatalf("record %d is %s, want %s (in order, once each)", i, got[i].ItemID, recs[i].ItemID)
		}
	}
	if left, _ := filepath.Glob(path + ".stage.*"); len(left) > 1 {
		t.Errorf("stage segments after the replay: %v", left)
	}
}

// The mover sleeps while nothing is staged; an Append into the empty
// stage wakes it, and it moves the records MoveInterval later without a
// reader asking (twice: after the first move it sleeps again).
func TestMoverWakesOnFirstStagedRecord(t *testing.T) {
	ctx := context.Background()
	s, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "logs.duckdb"),
		duckdb.Options{MemoryLimit: 128 << 20, MoveRecords: 1 << 20, MoveInterval: 50 * time.Millisecond, CompactAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := logstoretest.Records(20, logstoretest.T0)
	for round, batch := range [][]connlog.Record{recs[:10], recs[10:]} {
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for s.Staged() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d records still staged after 30 s (MoveInterval 50 ms): the mover was not woken", round, s.Staged())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Back-pressure: with MaxStaged records waiting an Append waits for the
// mover to take them, and nothing is lost or doubled on the way.
func TestBackPressureWaitsForTheMover(t *testing.T) {
	ctx := context.Background()
	s, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "logs.duckdb"),
		duckdb.Options{MemoryLimit: 128 << 20, MoveRecords: 1000, MaxStaged: 1500, MoveInterval: time.Hour, CompactAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := logstoretest.Records(6000, logstoretest.T0)
	for i := 0; i < len(recs); i += 500 {
		if err := s.Append(ctx, recs[i:i+500]); err != nil {
			t.Fatal(err)
		}
		if n := s.Staged(); n > 1500+500 {
			t.Fatalf("%d records staged after an Append, MaxStaged 1,500", n)
		}
	}
	got, err := s.Find(ctx, connlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records stored, want %d", len(got), len(recs))
	}
	for i := range got {
		if got[i].ItemID != recs[i].ItemID {
			t.Fatalf("record %d is %s, want %s", i, got[i].ItemID, recs[i].ItemID)
		}
	}
}

// Back-pressure paces Appends once the stage is over half full: none
// below half, then up to twice the last move's time for the batch.
func TestPaceGrowsWithTheStage(t *testing.T) {
	const maxN, maxBytes = 100_000, 64 << 20
	rate := 50_000.0 // records/s of the last move: 1,000 records in 20 ms
	for _, c := range []struct {
		count int
		size  int64
		rate  float64
		want  time.Duration
	}{
		{40_000, 1 << 20, rate, 0},
		{50_000, 1 << 20, rate, 0},
		{75_000, 1 << 20, rate, 20 * time.Millisecond},
		{100_000, 1 << 20, rate, 40 * time.Millisecond},
		{200_000, 1 << 20, rate, 40 * time.Millisecond},
		{1_000, 48 << 20, rate, 20 * time.Millisecond}, // by bytes
		{100_000, 1 << 20, 0, 0},                       // no move yet
	} {
		got := duckdb.Pace(c.count, c.size, c.rate, 1000, maxN, maxBytes)
		if d := got - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("pace with %d records / %d bytes staged, rate %.0f: %v, want %v", c.count, c.size, c.rate, got, c.want)
		}
	}
}

// The stage's frames and the loader's columns reuse their memory from
// one move to the next (bufpool.go): records stored by earlier moves,
// and the resource tuples they brought, come back as they were appended
// after many moves through the same buffers; also when a move stores its
// frames in many chunks (a transaction each, the buffers of a stored
// chunk reused by the Appends meanwhile), and with batches delivered
// twice, in the same chunk or in a later one: each record once.
func TestMovesReuseBuffersWithoutMixingRecords(t *testing.T) {
	for _, c := range []struct {
		name  string
		chunk int64
	}{{"chunk per move", 0}, {"chunk per frame", 1}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "logs.duckdb"),
				duckdb.Options{MemoryLimit: 128 << 20, MoveRecords: 300, MoveInterval: 5 * time.Millisecond, MoveChunkBytes: c.chunk, CompactAfter: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			g, err := loggen.New(loggen.Options{Records: 6000, Devices: 500, End: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), Span: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			var all []connlog.Record
			for b := 0; ; b++ {
				rs := g.Next(200)
				if len(rs) == 0 {
					break
				}
				for i := range rs {
					// A resource group a batch: new tuples in every move.
					rs[i].ResourceGroup = fmt.Sprintf("rg-%02d", b)
					rs[i].ResourceID = "/SUBSCRIPTIONS/X/RESOURCEGROUPS/" + rs[i].ResourceGroup
				}
				if err := s.Append(ctx, rs); err != nil {
					t.Fatal(err)
				}
				if b%7 == 3 {
					// Delivered again (a redelivery after a lost ack).
					if err := s.Append(ctx, rs); err != nil {
						t.Fatal(err)
					}
				}
				all = append(all, rs...)
				if b%5 == 4 {
					time.Sleep(10 * time.Millisecond) // let the mover take some
				}
			}
			got, err := s.Find(ctx, connlog.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(all) {
				t.Fatalf("found %d records, appended %d", len(got), len(all))
			}
			want := map[string]connlog.Record{}
			for _, r := range all {
				r.TimeGenerated = r.TimeGenerated.UTC().Round(0)
				want[r.ItemID] = r
			}
			for _, r := range got {
				w, ok := want[r.ItemID]
				if !ok {
					t.Fatalf("found %s, never appended", r.ItemID)
				}
				delete(want, r.ItemID)
				r.TimeGenerated = r.TimeGenerated.UTC().Round(0)
				if !reflect.DeepEqual(r, w) {
					t.Fatalf("record %s came back as\n%+v\nappended\n%+v", r.ItemID, r, w)
				}
			}
		})
	}
}
