package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeDir holds package.json, package-lock.json and the scripts.
const nodeDir = "node"

var (
	nodeOnce sync.Once
	nodeErr  error
	nodeSkip string
)

// requireNode makes sure node is available and the pinned SDKs are installed
// (npm ci when node_modules is missing, so `go test ./...` works on a fresh
// machine that can reach the npm registry). Without node/npm the test is
// skipped; a failing npm ci fails it.
func requireNode(t *testing.T) {
	t.Helper()
	nodeOnce.Do(func() {
		if _, err := exec.LookPath("node"); err != nil {
			nodeSkip = "node is not installed: the Node.js interop tests need Node.js >= 20"
			return
		}
		stale := installedMismatch()
		if stale == "" {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			nodeSkip = "npm is not installed and " + nodeDir + "/node_modules is missing"
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = nodeDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			nodeErr = fmt.Errorf("npm ci in interop/%s (%s): %v\n%s", nodeDir, stale, err, out)
			return
		}
		if stale := installedMismatch(); stale != "" {
			nodeErr = fmt.Errorf("after npm ci in interop/%s: %s", nodeDir, stale)
		}
	})
	if nodeSkip != "" {
		t.Skip(nodeSkip)
	}
	if nodeErr != nil {
		t.Fatal(nodeErr)
	}
}

// installedMismatch says why node_modules does not hold exactly the
// versions package.json pins ("" when it does).
func installedMismatch() string {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(nodeDir, "package.json"))
	if err != nil {
		return err.Error()
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "package.json: " + err.Error()
	}
	for name, want := range pkg.Dependencies {
		var got struct {
			Version string `json:"version"`
		}
		b, err := os.ReadFile(filepath.Join(nodeDir, "node_modules", name, "package.json"))
		if err != nil {
			return name + " is not installed"
		}
		if err := json.Unmarshal(b, &got); err != nil || got.Version != want {
			return fmt.Sprintf("%s %s is installed, package.json pins %s", name, got.Version, want)
		}
	}
	return ""
}

// event is one JSON line a script printed.
type event map[string]any

func (e event) str(k string) string {
	v, _ := e[k].(string)
	return v
}

func (e event) num(k string) int {
	v, _ := e[k].(float64)
	return int(v)
}

func (e event) props() map[string]string {
	m := map[string]string{}
	if p, ok := e["properties"].(map[string]any); ok {
		for k, v := range p {
			m[k] = fmt.Sprint(v)
		}
	}
	return m
}

// lockedBuffer collects a process's stderr (or a logger's output) safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… (%d lines omitted)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// script is a running node script: its events arrive on Events, which is
// closed when stdout ends.
type script struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer
	Events chan event
	lines  []string // every stdout line, for failure messages
	mu     sync.Mutex
	done   chan struct{}
	err    error // from Wait, valid after done
}

// startScript runs node <name> in interop/node with env added to the
// process environment. ctx bounds the process's life.
func startScript(ctx context.Context, t *testing.T, name string, env map[string]string) *script {
	t.Helper()
	cmd := exec.CommandContext(ctx, "node", name)
	cmd.Dir = nodeDir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.WaitDelay = 5 * time.Second
	s := &script{name: name, cmd: cmd, stderr: &lockedBuffer{}, Events: make(chan event, 64), done: make(chan struct{})}
	cmd.Stderr = s.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.lines = append(s.lines, line)
			s.mu.Unlock()
			var e event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				e = event{"event": "garbage", "line": line}
			}
			s.Events <- e
		}
		close(s.Events)
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
		go func() {
			for range s.Events { // unblock the reader if nobody consumed
			}
		}()
		<-s.done
	})
	return s
}

// diag is the script's output so far, for failure messages.
func (s *script) diag() string {
	s.mu.Lock()
	out := strings.Join(s.lines, "\n")
	s.mu.Unlock()
	return fmt.Sprintf("node %s stdout:\n%s\nstderr:\n%s", s.name, tail(out, 40), tail(s.stderr.String(), 40))
}

// next returns the next event, failing the test at ctx's deadline or when
// the script ends first.
func (s *script) next(ctx context.Context, t *testing.T, waitingFor string) event {
	t.Helper()
	select {
	case e, ok := <-s.Events:
		if !ok {
			<-s.done
			t.Fatalf("node %s ended (%v) while waiting for %s\n%s", s.name, s.err, waitingFor, s.diag())
		}
		if e.str("event") == "error" {
			t.Fatalf("node %s failed while waiting for %s: %s\n%s", s.name, waitingFor, e.str("message"), s.diag())
		}
		return e
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s from node %s\n%s", waitingFor, s.name, s.diag())
	}
	return nil
}

// wait waits for the process to exit and fails unless it exited 0.
func (s *script) wait(ctx context.Context, t *testing.T) {
	t.Helper()
	for range s.Events { // drain
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		t.Fatalf("node %s did not exit\n%s", s.name, s.diag())
	}
	if s.err != nil {
		t.Fatalf("node %s: %v\n%s", s.name, s.err, s.diag())
	}
}

// eventually polls check until it returns nil or the deadline passes.
func eventually(ctx context.Context, t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		if err = check(); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: still failing after %v: %v", what, timeout, err)
		case <-tick.C:
		}
	}
}
