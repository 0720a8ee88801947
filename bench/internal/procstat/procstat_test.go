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
