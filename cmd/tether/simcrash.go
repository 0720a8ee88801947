package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// hubCrashTimeout bounds the --hub-crash-cmd program, and again the wait
// for the hub to accept connections after it.
const hubCrashTimeout = 2 * time.Minute

// crashHubCmd is sim.Env.CrashHub for --hub-crash-cmd: it runs the
// operator's program (its words split as a shell would, no shell run),
// which must kill the hub (in a cluster: the node at the last
// --mqtt-addr) with SIGKILL and start it again, then waits until that
// MQTT address accepts TCP connections.
func crashHubCmd(cmdline, mqttAddr string) (func(ctx context.Context) error, error) {
	words, err := splitWords(cmdline)
	if err != nil || len(words) == 0 {
		return nil, fmt.Errorf("--hub-crash-cmd %q: want a program and its arguments (%v)", cmdline, err)
	}
	return func(ctx context.Context) error { return runAndWait(ctx, "--hub-crash-cmd", words, mqttAddr) }, nil
}

// restartNodeCmd is sim.Env.RestartNode for --node-restart-cmd: for node
// i it runs the operator's program with "{node}" in its words replaced by
// the node's number (1, 2, …) and "{addr}" by its MQTT address; the
// program must stop the node the way an operator does (SIGTERM) and start
// it again. Then it waits until the node's MQTT address accepts TCP
// connections.
func restartNodeCmd(cmdline string, addrs []string) (func(ctx context.Context, i int) error, error) {
	words, err := splitWords(cmdline)
	if err != nil || len(words) == 0 {
		return nil, fmt.Errorf("--node-restart-cmd %q: want a program and its arguments (%v)", cmdline, err)
	}
	return func(ctx context.Context, i int) error {
		r := strings.NewReplacer("{node}", strconv.Itoa(i+1), "{addr}", addrs[i])
		ws := make([]string, len(words))
		for j, w := range words {
			ws[j] = r.Replace(w)
		}
		return runAndWait(ctx, "--node-restart-cmd", ws, addrs[i])
	}, nil
}

// runAndWait runs words (bounded by hubCrashTimeout), then waits as long
// again until mqttAddr accepts TCP connections.
func runAndWait(ctx context.Context, flag string, words []string, mqttAddr string) error {
	ctx, cancel := context.WithTimeout(ctx, hubCrashTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, words[0], words[1:]...)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	for {
		conn, err := net.DialTimeout("tcp", mqttAddr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s did not accept connections within %s: %w", flag, mqttAddr, hubCrashTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
