package procstat

import (
	"os"
	"testing"
)

func TestReadsOwnProcess(t *testing.T) {
	pid := os.Getpid()
	if _, err := CPU(pid); err != nil {
		t.Fatal(err)
	}
	if kib, err := RSSKiB(pid); err != nil || kib <= 0 {
		t.Fatalf("RSSKiB = %d, %v", kib, err)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := FDs(pid)
	f.Close()
	after, _ := FDs(pid)
	if before != after+1 {
		t.Fatalf("FDs: %d with /dev/null open, %d after closing it", before, after)
	}
	if _, err := ListenOverflows(); err != nil {
		t.Fatal(err)
	}
	if _, err := SystemBusy(); err != nil {
		t.Fatal(err)
	}
}

// RunNanos counts this process's threads: a spin of a few milliseconds
// shows in it, and never makes it go back.
func TestRunNanosSeesWork(t *testing.T) {
	pid := os.Getpid()
	a, err := RunNanos(pid)
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i ^ x
	}
	b, err := RunNanos(pid)
	if err != nil {
		t.Fatal(err)
	}
	if b <= a {
		t.Fatalf("RunNanos %d → %d after a spin (x %d)", a, b, x)
	}
}
