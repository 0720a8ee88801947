package main

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

	"github.com/tether-hub/tether/internal/hubproc"
)

// broker is one started broker process.
type broker struct {
	name     string
	pid      int
	tcp, tls string
	debug    string // pprof address, when served
	stop     func()
}

var (
	procMu sync.Mutex
	procs  = map[int]chan struct{}{} // pid → closed when it exited
)

// killAll SIGKILLs every child still running (by pid).
func killAll() {
	procMu.Lock()
	defer procMu.Unlock()
	for pid := range procs {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// startProc runs bin with its output in logPath and waits until addrs
// accept connections.
func startProc(ctx context.Context, logPath, bin string, addrs []string, args ...string) (*exec.Cmd, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	done, err := startTracked(cmd, lf)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				return nil, fmt.Errorf("%s exited before listening (log %s)", filepath.Base(bin), logPath)
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return cmd, nil
}

// startTracked starts cmd (killed with this process) and tracks it for
// killAll and stopCmd; lf, if not nil, is closed when cmd has exited. The
// channel is closed then.
func startTracked(cmd *exec.Cmd, lf *os.File) (<-chan struct{}, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		if lf != nil {
			lf.Close()
		}
		return nil, err
	}
	done := make(chan struct{})
	procMu.Lock()
	procs[cmd.Process.Pid] = done
	procMu.Unlock()
	go func() {
		_ = cmd.Wait()
		if lf != nil {
			lf.Close()
		}
		procMu.Lock()
		delete(procs, cmd.Process.Pid)
		procMu.Unlock()
		close(done)
	}()
	return done, nil
}

// stopCmd sends SIGTERM, then SIGKILL after 20 s.
func stopCmd(cmd *exec.Cmd) {
	procMu.Lock()
	done, ok := procs[cmd.Process.Pid]
	procMu.Unlock()
	if !ok {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

func freeAddrs(n int) ([]string, error) {
	ports, err := hubproc.FreePorts(n)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ports {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return out, nil
}

func startBare(ctx context.Context, s *setup, logPath string) (*broker, error) {
	a, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	cmd, err := startProc(ctx, logPath, s.o.bin["baremochi"], a, "-tcp", a[0], "-tls", a[1], "-cert", s.cert, "-key", s.key)
	if err != nil {
		return nil, err
	}
	return &broker{name: "bare", pid: cmd.Process.Pid, tcp: a[0], tls: a[1], stop: func() { stopCmd(cmd) }}, nil
}

// startMosquitto runs Mosquitto with a TCP and a TLS listener and the
// password file (every device's username and SAS token, hashed by
// mosquitto_passwd): authentication comparable to Tether's.
func startMosquitto(ctx context.Context, s *setup, logPath string) (*broker, error) {
	a, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(s.o.work, "mosquitto.conf")
	body := strings.Join([]string{
		"user root", // stay the invoking user (no privilege drop to 'mosquitto')
		"per_listener_settings false",
		"allow_anonymous false",
		"password_file " + s.passwd,
		"persistence false",
		"max_keepalive 65535",
		"log_dest stderr",
		"log_type error",
		"listener " + port(a[0]) + " 127.0.0.1",
		"listener " + port(a[1]) + " 127.0.0.1",
		"certfile " + s.cert,
		"keyfile " + s.key,
		"",
	}, "\n")
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return nil, err
	}
	cmd, err := startProc(ctx, logPath, s.mosquitto, a, "-c", conf)
	if err != nil {
		return nil, err
	}
	return &broker{name: "mosquitto", pid: cmd.Process.Pid, tcp: a[0], tls: a[1], stop: func() { stopCmd(cmd) }}, nil
}

func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// startTether runs `tether serve --dev` of build name (tether or
// tether-prev: BENCH_PREV's) on that build's own data dir, with args
// added to serve's flags.
func startTether(ctx context.Context, s *setup, name, logPath string, args ...string) (*broker, error) {
	h, err := hubproc.New(hubproc.Options{Bin: s.o.bin[name], DataDir: s.dataDir(name), LogPath: logPath, Debug: true, Args: args})
	if err != nil {
		return nil, err
	}
	if err := h.Start(ctx); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	procMu.Lock()
	procs[h.Pid()] = done // for killAll; hubproc waits for the process
	procMu.Unlock()
	b := &broker{name: name, pid: h.Pid(), tcp: h.TCPAddr, tls: h.MQTTAddr, debug: h.DebugAddr}
	b.stop = func() {
		h.Stop(20 * time.Second)
		procMu.Lock()
		delete(procs, b.pid)
		procMu.Unlock()
	}
	s.httpsAddr = h.HTTPSAddr
	return b, nil
}
