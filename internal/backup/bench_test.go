package backup_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/backup"
	"github.com/tether-hub/tether/internal/journal"
)

// BenchmarkTakeAndRestore backs up a journal holding 100,000 telemetry
// messages of 200 random bytes (~26 MB on disk, incompressible) into a
// directory and restores it into a new data dir. It reports each half in
// ms and the backup's size; MB/s is of that size, per take+restore.
func BenchmarkTakeAndRestore(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	j, err := journal.Open(ctx, journal.Options{DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	for i := range 100_000 {
		payload := make([]byte, 200)
		_, _ = rand.Read(payload)
		if _, err := j.JS.PublishAsync(journal.TelemetryPrefix+fmt.Sprintf("dev%d", i%1000), payload); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			<-j.JS.PublishAsyncComplete()
		}
	}
	<-j.JS.PublishAsyncComplete()
	src := backup.Source{NC: j.NC, JS: j.JS, Hub: "bench", StageDir: dir}
	var size int64
	var take, restore time.Duration
	b.ResetTimer()
	for i := range b.N {
		to := filepath.Join(b.TempDir(), fmt.Sprint(i))
		w, err := backup.NewDirWriter(to)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		m, err := backup.Take(ctx, src, w)
		if err != nil {
			b.Fatal(err)
		}
		take += time.Since(start)
		size = m.Size()
		start = time.Now()
		if _, err := backup.Restore(ctx, to, backup.RestoreOptions{DataDir: filepath.Join(b.TempDir(), "r")}); err != nil {
			b.Fatal(err)
		}
		restore += time.Since(start)
	}
	b.SetBytes(size)
	b.ReportMetric(float64(take.Milliseconds())/float64(b.N), "take-ms")
	b.ReportMetric(float64(restore.Milliseconds())/float64(b.N), "restore-ms")
	b.ReportMetric(float64(size)/1e6, "backup-MB")
}
