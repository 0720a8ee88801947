package alert

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// natsSender publishes the payload on the subject.
func natsSender(publish PublishFunc, a NATSAction) sendFunc {
	return func(ctx context.Context, n notification) error {
		if publish == nil {
			return Permanent(errors.New("no NATS connection for alert actions"))
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := publish(ctx, a.Subject, n.payload); err != nil {
			return fmt.Errorf("nats %s: %w", a.Subject, err)
		}
		return nil
	}
}
