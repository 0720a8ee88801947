package alert

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tether-hub/tether/internal/notify"
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
		out, err := notify.Run(ctx, notify.Command{
			Argv:  c.Argv,
			Stdin: n.payload,
			Env: append(os.Environ(),
				"TETHER_ALERT_ID="+n.alert.ID,
				"TETHER_ALERT_RULE="+n.alert.Rule.Name,
				"TETHER_ALERT_CONDITION="+string(n.alert.Condition),
				"TETHER_ALERT_SEVERITY="+n.alert.Rule.Severity.String(),
			),
			Timeout:   timeout,
			MaxOutput: 2048,
		})
		if err == nil {
			return nil
		}
		if out != "" {
			err = fmt.Errorf("%w: %s", err, out)
		}
		var ce *notify.CommandError
		if errors.As(err, &ce) && ce.NotStarted {
			return Permanent(err)
		}
		return err
	}
}
