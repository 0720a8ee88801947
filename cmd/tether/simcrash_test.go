package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/testnet"
)

// --node-restart-cmd runs the program with the node's number and address
// put in, then waits for that node's MQTT address.
func TestRestartNodeCmdSubstitutesTheNode(t *testing.T) {
	ln := testnet.ClosingListener(t)
	out := filepath.Join(t.TempDir(), "ran")
	addrs := []string{"127.0.0.1:1", ln.Addr().String()}
	restart, err := restartNodeCmd("sh -c 'echo {node} {addr} > "+out+"'", addrs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := restart(ctx, 1); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), "2 "+addrs[1]; got != want {
		t.Fatalf("the program ran with %q, want %q", got, want)
	}
	if _, err := restartNodeCmd("'unclosed", addrs); err == nil {
		t.Fatal("an unparsable command line was accepted")
	}
}
