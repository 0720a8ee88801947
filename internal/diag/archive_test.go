package diag

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/connlog/logstoretest"
)

func TestHourPath(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 59, 59, 0, time.FixedZone("x", 3600))
	got := hourPath("/a", "Connections", "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/HUB", at)
	want := "/a/insights-logs-connections/resourceId=/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/HUB/y=2026/m=03/d=04/h=04/m=00/PT1H.json"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if p := hourPath("/a", "Connections", "/../../etc", at); !strings.HasPrefix(p, "/a/insights-logs-connections/resourceId=/_/_/etc/") {
		t.Errorf("a resource id with .. escapes: %s", p)
	}
	if h, ok := hourOf(got); !ok || !h.Equal(time.Date(2026, 3, 4, 4, 0, 0, 0, time.UTC)) {
		t.Errorf("hourOf: %s %v", h, ok)
	}
}

func countLines(t *testing.T, root string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			n += strings.Count(string(b), "\n")
		}
		return nil
	})
	return n
}

// TestArchiveAtLeastOnceWithoutRepeats: a batch appended again (by the
// same sink, or a new one after a restart) adds no line; a torn last line
// is cut off when the file is opened again.
func TestArchiveAtLeastOnceWithoutRepeats(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	recs := logstoretest.Records(300, time.Now().Add(-3*time.Hour).Truncate(time.Hour)) // 1.5 s apart: 7.5 minutes
	a := newArchiveSink(root)
	if err := a.Append(ctx, recs[:200]); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(ctx, recs[100:]); err != nil {
		t.Fatal(err)
	}
	if n := countLines(t, root); n != 300 {
		t.Fatalf("%d lines, want 300", n)
	}
	a.Close()

	// A crash tore the last line of the file.
	p := hourPath(root, recs[299].Category, recs[299].ResourceID, recs[299].TimeGenerated)
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-`)
	f.Close()

	b := newArchiveSink(root)
	defer b.Close()
	if err := b.Append(ctx, recs); err != nil { // redelivered after the restart
		t.Fatal(err)
	}
	if n := countLines(t, root); n != 300 {
		t.Fatalf("after redelivery: %d lines, want 300", n)
	}
	data, _ := os.ReadFile(p)
	if strings.Contains(string(data), `{"time":"2026-{`) || !strings.HasSuffix(string(data), "}\n") {
		t.Errorf("torn line kept:\n%s", data[max(0, len(data)-200):])
	}
}

func TestArchiveDeleteBefore(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []connlog.Record
	for h := range 5 {
		recs = append(recs, logstoretest.Records(2, t0.Add(time.Duration(h)*time.Hour))...)
	}
	a := newArchiveSink(root)
	defer a.Close()
	if err := a.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// Hours 00 and 01 have ended by 02:00; 02 has not.
	n, err := a.DeleteBefore(ctx, t0.Add(2*time.Hour+30*time.Minute))
	if err != nil || n < 2 {
		t.Fatalf("DeleteBefore: %d, %v", n, err)
	}
	for h := range 5 {
		for _, r := range recs[2*h : 2*h+2] {
			_, err := os.Stat(hourPath(root, r.Category, r.ResourceID, r.TimeGenerated))
			if gone := os.IsNotExist(err); gone != (h < 2) {
				t.Errorf("hour %d %s: gone=%v", h, r.Category, gone)
			}
		}
	}
	// Directories of deleted hours are gone too.
	if _, err := os.Stat(filepath.Dir(hourPath(root, recs[0].Category, recs[0].ResourceID, t0))); !os.IsNotExist(err) {
		t.Errorf("empty hour directory kept: %v", err)
	}
	// Appending to a deleted hour after the delete works (the file was closed).
	if err := a.Append(ctx, recs[:2]); err != nil {
		t.Fatal(err)
	}
}
