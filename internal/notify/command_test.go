package notify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/notify"
)

func TestRun(t *testing.T) {
	ctx := context.Background()
	out, err := notify.Run(ctx, notify.Command{Argv: []string{"sh", "-c", `read line; echo "got $line from $WHO"`}, Stdin: []byte("hello\n"), Env: []string{"WHO=test"}})
	if err != nil || out != "got hello from test" {
		t.Fatalf("%q %v", out, err)
	}
	out, err = notify.Run(ctx, notify.Command{Argv: []string{"sh", "-c", "echo oops >&2; exit 3"}})
	var ce *notify.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 3 || ce.TimedOut || ce.NotStarted || out != "oops" {
		t.Fatalf("%q %#v", out, err)
	}
	out, err = notify.Run(ctx, notify.Command{Argv: []string{"sh", "-c", "head -c 10000 /dev/zero | tr '\\0' x"}, MaxOutput: 100})
	if err != nil || len(out) != 100 {
		t.Fatalf("%d bytes %v", len(out), err)
	}
	_, err = notify.Run(ctx, notify.Command{Argv: []string{filepath.Join(t.TempDir(), "missing")}})
	if !errors.As(err, &ce) || !ce.NotStarted {
		t.Fatalf("missing program: %#v", err)
	}
}

// A hung script is killed at its timeout with everything it started, even
// a child that holds its output open; Run returns promptly.
func TestRunTimeoutKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	start := time.Now()
	_, err := notify.Run(context.Background(), notify.Command{
		Argv:    []string{"sh", "-c", `sleep 60 & echo $! > "$0"; wait`, pidFile},
		Timeout: 300 * time.Millisecond,
	})
	var ce *notify.CommandError
	if !errors.As(err, &ce) || !ce.TimedOut || ce.Canceled {
		t.Fatalf("%#v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Run took %v", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	proc := "/proc/" + strings.TrimSpace(string(b))
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.ReadFile(proc + "/stat")
		// Gone, or a zombie waiting for init to reap it.
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script's child still runs: %s", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := notify.Run(ctx, notify.Command{Argv: []string{"sleep", "5"}}); !errors.As(err, &ce) || !ce.Canceled {
		t.Fatalf("cancelled: %#v", err)
	}
}
