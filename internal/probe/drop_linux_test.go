package probe_test

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/probe"
	"github.com/tether-hub/tether/internal/registry"
)

// droppingPort returns a loopback port whose SYNs go unanswered, as behind
// a firewall that drops them: a socket that listens with a backlog of 0,
// never accepts, and has its one queue slot taken. Linux drops SYNs for a
// full accept queue without a reset.
func droppingPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	filler, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(port), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	return port
}

func TestSilentlyDroppedPort(t *testing.T) {
	_, cs := newDevice(t, registry.Enabled)
	cfg := config(cs)
	cfg.MQTTPort = droppingPort(t)
	cfg.Timeout = 700 * time.Millisecond
	rep := run(t, cfg)
	s := step(t, rep, probe.StepTCP, hostPort(cfg.MQTTPort))
	if s.Status != probe.Fail || s.TCP.Outcome != probe.TimedOut || !strings.Contains(s.Summary, "no answer within 700ms (dropped)") || !strings.Contains(s.Hint, "dropped without an answer") {
		t.Fatalf("%s %s: %q (hint %q)", s.Status, s.TCP.Outcome, s.Summary, s.Hint)
	}
	if ws := step(t, rep, probe.StepWebSocket, ""); ws.Status != probe.Pass {
		t.Errorf("websocket: %s", ws.Summary)
	}
}
