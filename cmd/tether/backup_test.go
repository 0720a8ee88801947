package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/registry"
)

// tether backup: remote (API), --local through the admin socket, --local
// on a stopped hub; backup verify; tether restore into a new data dir that
// a hub then starts on.
func TestBackupRestoreCommands(t *testing.T) {
	a := startApp(t)
	ctx := context.Background()
	if _, err := a.Registry().Create(ctx, registry.Device{DeviceID: "kept-1"}, "test"); err != nil {
		t.Fatal(err)
	}
	cli := &cliHub{flags: []string{"--data-dir", a.DataDir()}}
	root := t.TempDir()

	remote := filepath.Join(root, "remote")
	out := cli.mustRun(t, "backup", "--to", remote)
	if !strings.Contains(out, "Backup written to "+remote) || !strings.Contains(out, "streams") {
		t.Fatalf("backup:\n%s", out)
	}
	if out := cli.mustRun(t, "backup", "verify", remote); !strings.Contains(out, "OK") {
		t.Fatalf("verify:\n%s", out)
	}
	if _, err := cli.run(t, "backup", "--to", remote); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("backup into a full directory: %v", err)
	}
	viaSocket := filepath.Join(root, "socket")
	cli.mustRun(t, "backup", "--to", viaSocket, "--local")
	if _, err := cli.run(t, "backup"); err == nil || !strings.Contains(err.Error(), "--to is required") {
		t.Errorf("backup without --to: %v", err)
	}

	stopCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := a.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	offline := filepath.Join(root, "offline")
	cli.mustRun(t, "backup", "--to", offline, "--local")
	for _, dir := range []string{viaSocket, offline} {
		if _, err := cli.run(t, "backup", "verify", dir); err != nil {
			t.Errorf("verify %s: %v", dir, err)
		}
	}

	// Restore each; a hub starts on the result with the device.
	if _, err := (&cliHub{}).run(t, "restore", "--from", remote); err == nil || !strings.Contains(err.Error(), "--data-dir is required") {
		t.Errorf("restore without --data-dir: %v", err)
	}
	for i, from := range []string{remote, offline} {
		target := filepath.Join(root, "restored", string(rune('a'+i)))
		out := (&cliHub{}).mustRun(t, "restore", "--from", from, "--data-dir", target, "--quiet")
		if !strings.Contains(out, "Restored hub localhost") || !strings.Contains(out, "tether serve --data-dir "+target) {
			t.Fatalf("restore:\n%s", out)
		}
		if _, err := (&cliHub{}).run(t, "restore", "--from", from, "--data-dir", target); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Errorf("restore over a data dir: %v", err)
		}
		b := startAppIn(t, target)
		if _, ok := b.Registry().Device("kept-1"); !ok {
			t.Errorf("restored from %s: the device is missing", from)
		}
		stopCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		b.Stop(stopCtx)
		cancel()
	}

	// A damaged backup is refused with what is wrong.
	os.WriteFile(filepath.Join(remote, app.LogFile), []byte("not a database"), 0o600)
	if _, err := cli.run(t, "backup", "verify", remote); err == nil || !strings.Contains(err.Error(), app.LogFile+" differs") {
		t.Errorf("verify of a damaged backup: %v", err)
	}
}
