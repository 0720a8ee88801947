package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// commandSender runs the program with the payload on stdin and the main
// facts in TETHER_ALERT_* variables. A non-zero exit is retried; a
// program that cannot be started is final.
func commandSender(c CommandAction) sendFunc {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return func(ctx context.Context, n notification) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
		cmd.Stdin = bytes.NewReader(n.payload)
		cmd.Env = append(os.Environ(),
			"TETHER_ALERT_ID="+n.alert.ID,
			"TETHER_ALERT_RULE="+n.alert.Rule.Name,
			"TETHER_ALERT_CONDITION="+string(n.alert.Condition),
			"TETHER_ALERT_SEVERITY="+n.alert.Rule.Severity.String(),
		)
		var out limitedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err == nil {
			return nil
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("command %s: %v: %s", c.Argv[0], err, strings.TrimSpace(out.String()))
		}
		if ctx.Err() != nil {
			return fmt.Errorf("command %s: %w", c.Argv[0], ctx.Err())
		}
		return Permanent(fmt.Errorf("command %s: %w", c.Argv[0], err))
	}
}

// limitedBuffer keeps the first 2 KiB of a command's output.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 2048 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
