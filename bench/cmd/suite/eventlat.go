package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// eventLatency runs bench/cmd/eventlat briefly (its own hub) and returns
// its markdown.
func (s *setup) eventLatency(ctx context.Context) (string, error) {
	out := filepath.Join(s.logs, "eventlat.md")
	cctx, cancel := context.WithTimeout(ctx, 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, s.o.bin["eventlat"], "-tether-bin", s.o.bin["tether"], "-devices", "2000",
		"-rates", "1000", "-duration", "10s", "-sync-probe=false", "-timeout", "120s", "-out", out)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	b, _ := os.ReadFile(out)
	return string(b), err
}
