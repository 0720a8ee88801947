package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/tether-hub/tether/internal/hubproc"
)

// child is a process the driver started. It runs in its own process group
// and gets SIGKILL if the driver dies; every child is stopped on exit.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, valid once done is closed
}

var (
	childrenMu sync.Mutex
	children   = map[*child]bool{}
)

// startChild starts bin with args, stdout and stderr appended to logPath.
func startChild(name, logPath, bin string, args ...string) (*child, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	childrenMu.Lock()
	children[c] = true
	childrenMu.Unlock()
	go func() {
		c.err = cmd.Wait()
		lf.Close()
		childrenMu.Lock()
		delete(children, c)
		childrenMu.Unlock()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group, waits up to grace, then
// SIGKILLs the group. It reports whether the child had to be killed.
func (c *child) stop(grace time.Duration) (killed bool) {
	if c.exited() {
		return false
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
	select {
	case <-c.done:
		return false
	case <-time.After(grace):
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
	<-c.done
	return true
}

// killAll stops every child still running (on exit, timeout or signal).
func killAll() {
	childrenMu.Lock()
	list := make([]*child, 0, len(children))
	for c := range children {
		list = append(list, c)
	}
	childrenMu.Unlock()
	for _, c := range list {
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
	}
}

// waitListening waits until every addr accepts a TCP connection, the child
// exits, or ctx ends.
func waitListening(ctx context.Context, c *child, addrs ...string) error {
	for _, a := range addrs {
		for {
			if c.exited() {
				return fmt.Errorf("%s exited before listening on %s: %v", c.name, a, c.err)
			}
			conn, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %s not listening: %w", c.name, a, errors.Join(ctx.Err(), err))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
var freePorts = hubproc.FreePorts

// runTool runs a build step in dir with output passed through.
func runTool(ctx context.Context, dir, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd.Run()
}
