package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A profile of this test binary burning CPU in a function of this
// package is read back through `go tool pprof -traces`: every sample is
// attributed, the shares add up, and the table has a row per stage.
func TestProfileStages(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to run pprof")
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	x := 0
	// 300 ms of CPU, however busy the machine is (at most 20 s).
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for c0, end := cpu(), time.Now().Add(20*time.Second); cpu()-c0 < 300*time.Millisecond && time.Now().Before(end); {
		for i := range 100000 {
			x += i * i
		}
	}
	pprof.StopCPUProfile()
	f.Close()
	res, total, err := profileStages(bin, path)
	if err != nil {
		t.Fatal(err)
	}
	if total < 100*time.Millisecond {
		t.Fatalf("only %s of samples read back (x=%d)", total, x)
	}
	var sum time.Duration
	for _, s := range res {
		sum += s.cpu
	}
	if sum != total {
		t.Errorf("stages add up to %s of %s", sum, total)
	}
	// The burner is in this module but in none of the pipeline's
	// packages: the catch-all stage of Tether's code takes it.
	if hub := res[len(stages)-1]; hub.cpu < total/2 {
		t.Errorf("%q has %s of %s", hub.name, hub.cpu, total)
	}
	tab := stagesTable(res, total, 500)
	if n := strings.Count(tab, "\n"); n != len(stages)+3 {
		t.Errorf("table of %d lines:\n%s", n, tab)
	}
}
