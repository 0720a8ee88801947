package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Command is one run of a local program.
type Command struct {
	// Argv is the program and its arguments (no shell).
	Argv []string
	// Env is the program's whole environment (nil: the hub's).
	Env   []string
	Stdin []byte
	// Timeout ends the run (0: only ctx does). The program and everything
	// it started in its process group are killed.
	Timeout time.Duration
	// MaxOutput bounds the output kept (stdout and stderr together);
	// default 4 KiB.
	MaxOutput int
}

// DefaultMaxOutput is how much of a command's output Run keeps.
const DefaultMaxOutput = 4 << 10

// waitDelay is how long Run waits, after the program was killed or has
// exited, for whatever still holds its output pipes (a child that left the
// process group) before it closes them.
const waitDelay = 2 * time.Second

// CommandError is a run that did not succeed.
type CommandError struct {
	Program string
	// ExitCode is the program's exit status (-1 when it was killed or did
	// not start).
	ExitCode int
	// TimedOut: Timeout ended it. Canceled: ctx ended it.
	TimedOut, Canceled bool
	// NotStarted: the program could not be started (missing, not
	// executable); retrying will not help until someone fixes that.
	NotStarted bool
	Err        error
}

func (e *CommandError) Error() string {
	switch {
	case e.NotStarted:
		return fmt.Sprintf("command %s could not be started: %v", e.Program, e.Err)
	case e.TimedOut:
		return fmt.Sprintf("command %s did not finish in time and was killed", e.Program)
	case e.Canceled:
		return fmt.Sprintf("command %s was stopped: %v", e.Program, e.Err)
	}
	return fmt.Sprintf("command %s exited with status %d", e.Program, e.ExitCode)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Run runs c with c.Stdin on its standard input and returns the start of
// what it wrote (stdout and stderr interleaved, at most MaxOutput bytes).
// A run that does not exit with status 0 returns a *CommandError.
func Run(ctx context.Context, c Command) (string, error) {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return "", &CommandError{ExitCode: -1, NotStarted: true, Err: errors.New("no program given")}
	}
	parent := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(c.Stdin)
	cmd.Env = c.Env
	ownProcessGroup(cmd)
	cmd.WaitDelay = waitDelay
	out := &limitedBuffer{max: c.MaxOutput}
	if out.max <= 0 {
		out.max = DefaultMaxOutput
	}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	output := strings.TrimSpace(out.String())
	if err == nil {
		return output, nil
	}
	ce := &CommandError{Program: c.Argv[0], ExitCode: -1, Err: err}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil && parent.Err() == nil:
		ce.TimedOut = true
	case ctx.Err() != nil:
		ce.Canceled = true
	case errors.As(err, &ee):
		ce.ExitCode = ee.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
		ce.ExitCode = 0 // exited 0; a child kept the output open
		return output, nil
	default:
		ce.NotStarted = true
	}
	return output, ce
}

// limitedBuffer keeps the first max bytes written to it. The buffer is a
// field, not embedded: an embedded bytes.Buffer would lend it ReadFrom,
// which io.Copy prefers to Write, and the limit would be bypassed.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }
