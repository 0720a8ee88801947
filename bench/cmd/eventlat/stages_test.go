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

// The webhook's send frames, net/http's or the direct sender's, count as
// the HTTP POST stage, though the runner's frames are in the same stack.
func TestWebhookFramesAreThePOSTStage(t *testing.T) {
	const post = "delivery: HTTP POST (request, net/http, socket)"
	stageOf := func(frames ...string) string {
		for _, s := range stages {
			for _, f := range frames {
				if s.re.MatchString(f) {
					return s.name
				}
			}
		}
		return ""
	}
	const runner = "github.com/tether-hub/tether/internal/events/delivery.(*runner).sendLoop"
	for _, leaf := range []string{
		"github.com/tether-hub/tether/internal/events/delivery.(*directSender).Send",
		"github.com/tether-hub/tether/internal/events/delivery.(*h1).post",
		"github.com/tether-hub/tether/internal/events/delivery.(*h1Conn).roundTrip",
		"github.com/tether-hub/tether/internal/events/delivery.(*webhook).send",
		"net/http.(*persistConn).writeLoop",
	} {
		if got := stageOf(leaf, runner); got != post {
			t.Errorf("%s: stage %q, want %q", leaf, got, post)
		}
	}
	if got := stageOf(runner); got == post {
		t.Errorf("the runner alone counts as the POST")
	}
}
