// Package hubproc runs `tether serve --dev` as a child process for
// benchmarks and end-to-end tests: build the binary, pick free loopback
// ports, start, wait until it listens, stop (SIGTERM, then SIGKILL), kill
// -9, restart on the same data dir and ports, and read its log.
package hubproc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles ./cmd/tether of the module rooted at moduleDir into
// dir/tether and returns the path.
func Build(moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "tether")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tether")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tether: %v\n%s", err, out)
	}
	return bin, nil
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Hub is one dev hub: fixed data dir and addresses, any number of runs.
type Hub struct {
	Bin, DataDir, LogPath        string
	MQTTAddr, HTTPSAddr, TCPAddr string
	DebugAddr                    string // /debug/pprof, when Debug was asked
	Args                         []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

// Options of New.
type Options struct {
	Bin, DataDir string
	LogPath      string   // default: <DataDir>.log
	Debug        bool     // serve /debug/pprof on a free port (--debug-addr)
	Args         []string // extra `serve` flags
}

// New picks the ports; Start runs the process.
func New(o Options) (*Hub, error) {
	p, err := FreePorts(4)
	if err != nil {
		return nil, err
	}
	h := &Hub{Bin: o.Bin, DataDir: o.DataDir, LogPath: o.LogPath, Args: o.Args,
		MQTTAddr:  fmt.Sprintf("127.0.0.1:%d", p[0]),
		HTTPSAddr: fmt.Sprintf("127.0.0.1:%d", p[1]),
		TCPAddr:   fmt.Sprintf("127.0.0.1:%d", p[2]),
	}
	if h.LogPath == "" {
		h.LogPath = filepath.Clean(o.DataDir) + ".log"
	}
	if o.Debug {
		h.DebugAddr = fmt.Sprintf("127.0.0.1:%d", p[3])
	}
	return h, nil
}

// Start runs the hub (appending to its log) and waits up to 60 s until
// MQTT/TCP and HTTPS accept connections.
func (h *Hub) Start(ctx context.Context) error {
	lf, err := os.OpenFile(h.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	h.runs++
	fmt.Fprintf(lf, "==== start %d at %s ====\n", h.runs, time.Now().Format(time.RFC3339Nano))
	args := []string{"serve", "--dev", "--data-dir", h.DataDir,
		"--mqtt-addr", h.MQTTAddr, "--https-addr", h.HTTPSAddr, "--tcp-addr", h.TCPAddr}
	if h.DebugAddr != "" {
		args = append(args, "--debug-addr", h.DebugAddr)
	}
	cmd := exec.Command(h.Bin, append(args, h.Args...)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		lf.Close()
		close(done)
	}()
	h.mu.Lock()
	h.cmd, h.done = cmd, done
	h.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for _, addr := range []string{h.TCPAddr, h.HTTPSAddr} {
		for {
			select {
			case <-done:
				return fmt.Errorf("tether exited before listening on %s: %v (log %s)", addr, cmd.ProcessState, h.LogPath)
			default:
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				h.Kill()
				return fmt.Errorf("tether not listening on %s (log %s)", addr, h.LogPath)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// Pid is the process id of the current run (0 if none started).
func (h *Hub) Pid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return 0
	}
	return h.cmd.Process.Pid
}

// Running reports whether the current run has not exited.
func (h *Hub) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done == nil {
		return false
	}
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL to the hub process (only that pid) and waits for it.
func (h *Hub) Kill() {
	h.mu.Lock()
	cmd, done := h.cmd, h.done
	h.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Stop sends SIGTERM and waits up to grace, then SIGKILL. It reports
// whether the hub exited by itself with status 0.
func (h *Hub) Stop(grace time.Duration) bool {
	h.mu.Lock()
	cmd, done := h.cmd, h.done
	h.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return cmd.ProcessState.Success()
	case <-time.After(grace):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return false
	}
}

// LogLines returns the hub log's lines that contain any of subs (all lines
// when subs is empty).
func (h *Hub) LogLines(subs ...string) []string {
	b, _ := os.ReadFile(h.LogPath)
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if len(subs) == 0 {
			out = append(out, l)
			continue
		}
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// Tail returns the last n lines of the hub's log.
func (h *Hub) Tail(n int) []string {
	ls := h.LogLines()
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return ls
}
