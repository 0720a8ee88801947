package delivery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/notify"
)

// command is the Command destination: a program of the operator's command
// directory run per batch, the events as JSON on its standard input.
//
// Only programs inside the directory run, so whoever may create
// subscriptions through the API chooses among programs the operator put
// there (and their arguments), never any program of the host. The program
// gets a small environment (PATH, HOME, LANG, LC_ALL, TZ, TMPDIR, USER of
// the hub, and the TETHER_* variables below), not the hub's: the hub's
// holds secrets such as the SMTP password.
//
//	TETHER_SUBSCRIPTION    the subscription's name
//	TETHER_DELIVERY_COUNT  attempts made before this one (aeg-delivery-count)
//	TETHER_EVENT_COUNT     events on stdin
//	TETHER_EVENT_ID, TETHER_EVENT_TYPE, TETHER_DEVICE_ID  of the first event
//	TETHER_CONTENT_TYPE    of stdin: the webhook body's (an Event Grid array,
//	                       or CloudEvents, one object or a batch array)
type command struct {
	nothingKept
	dir string // absolute, symlinks resolved
	env []string
}

// NewCommandDestination returns the Command destination for programs in
// dir, which must exist.
func NewCommandDestination(dir string) (Destination, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("command directory %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("command directory %s is not a directory", dir)
	}
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return &command{dir: abs, env: env}, nil
}

// program resolves the first word of a command inside the directory: a
// name relative to it, or a path into it (symlinks followed, and the
// target must still be inside). It must be an executable regular file.
func (c *command) program(name string) (string, error) {
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.dir, p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("program %s is not in the hub's command directory %s", name, c.dir)
	}
	if rel, err := filepath.Rel(c.dir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("program %s is outside the hub's command directory %s", name, c.dir)
	}
	fi, err := os.Stat(real)
	switch {
	case err != nil:
		return "", err
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("program %s is not a regular file", name)
	case fi.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("program %s is not executable", name)
	}
	return real, nil
}

func (c *command) Check(_ context.Context, sub events.Subscription) error {
	argv := sub.Destination.Properties.Command
	if len(argv) == 0 {
		return errors.New("no command")
	}
	_, err := c.program(argv[0])
	return err
}

func (c *command) Open(_ events.Subscription, env SendEnv) Sender {
	return stateless{env: env, send: c.send}
}

// send runs the program once for the batch. Exit status 0 delivers it;
// another status or the timeout (the program's process group is killed)
// fails the attempt, which is retried; a program that cannot be found or
// started fails for good.
func (c *command) send(ctx context.Context, senv SendEnv, b Batch) Result {
	p := b.Sub.Destination.Properties
	prog, err := c.program(p.Command[0])
	if err != nil {
		return Result{Final: true, Outcome: "NotStarted", Err: err.Error()}
	}
	d, err := events.NewDelivery(b.Sub, b.Events, b.Attempt, "")
	if err != nil {
		return Result{Final: true, Outcome: "BadRequest", Err: err.Error()}
	}
	first := b.Events[0]
	env := append(append([]string(nil), c.env...),
		"TETHER_SUBSCRIPTION="+b.Sub.Name,
		"TETHER_DELIVERY_COUNT="+strconv.Itoa(b.Attempt-1),
		"TETHER_EVENT_COUNT="+strconv.Itoa(len(b.Events)),
		"TETHER_EVENT_ID="+first.ID,
		"TETHER_EVENT_TYPE="+string(first.Type),
		"TETHER_DEVICE_ID="+first.DeviceID,
		"TETHER_CONTENT_TYPE="+d.Header.Get("Content-Type"),
	)
	timeout := time.Duration(p.TimeoutInSeconds) * time.Second
	ctx, stop := deadline(ctx, senv.Clock, timeout)
	out, err := notify.Run(ctx, notify.Command{Argv: append([]string{prog}, p.Command[1:]...), Env: env, Stdin: d.Body})
	timedOut := stop()
	res := Result{Output: out}
	var ce *notify.CommandError
	switch {
	case err == nil:
		res.OK = true
	case timedOut:
		res.Outcome, res.Err = OutcomeTimedOut, fmt.Sprintf("no exit within %s; killed", timeout)
	case errors.As(err, &ce) && ce.NotStarted:
		res.Final, res.Outcome, res.Err = true, "NotStarted", err.Error()
	case errors.As(err, &ce) && ce.ExitCode >= 0:
		res.Outcome, res.Err = "ExitStatus"+strconv.Itoa(ce.ExitCode), fmt.Sprintf("%s exited with status %d", p.Command[0], ce.ExitCode)
	default:
		res.Outcome, res.Err = "Failed", err.Error()
	}
	if !res.OK && out != "" {
		res.Err += ": " + firstLine(out, 200)
	}
	return res
}

// firstLine is s up to its first line end, at most n bytes.
func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
