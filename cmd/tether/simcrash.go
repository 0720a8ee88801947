package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"time"
)

// hubCrashTimeout bounds the --hub-crash-cmd program, and again the wait
// for the hub to accept connections after it.
const hubCrashTimeout = 2 * time.Minute

// crashHubCmd is sim.Env.CrashHub for --hub-crash-cmd: it runs the
// operator's program (its words split as a shell would, no shell run),
// which must kill the hub with SIGKILL and start it again, then waits
// until the hub's MQTT address accepts TCP connections.
func crashHubCmd(cmdline, mqttAddr string) (func(ctx context.Context) error, error) {
	words, err := splitWords(cmdline)
	if err != nil || len(words) == 0 {
		return nil, fmt.Errorf("--hub-crash-cmd %q: want a program and its arguments (%v)", cmdline, err)
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, hubCrashTimeout)
		defer cancel()
		c := exec.CommandContext(ctx, words[0], words[1:]...)
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("--hub-crash-cmd: %w", err)
		}
		for {
			conn, err := net.DialTimeout("tcp", mqttAddr, time.Second)
			if err == nil {
				conn.Close()
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the hub did not accept connections on %s within %s of the crash: %w", mqttAddr, hubCrashTimeout, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}, nil
}
