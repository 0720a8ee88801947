package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/broker"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
)

// c2dAdapter gives the API the broker's C2D with the registry's not-found.
// sent counts each message the broker took.
type c2dAdapter struct {
	a    *App
	sent func()
}

func (c c2dAdapter) SendC2D(ctx context.Context, deviceID string, payload []byte, props map[string]string, messageID string) error {
	err := c.a.sendC2D(ctx, deviceID, payload, props, messageID)
	if errors.Is(err, broker.ErrUnknownDevice) {
		return fmt.Errorf("%w: %w", registry.ErrNotFound, err)
	}
	if err == nil && c.sent != nil {
		c.sent()
	}
	return err
}

// telemetryFeed tails tether.telemetry.<device> (or all) for the API's
// SSE stream: a plain NATS subscription, live messages only.
type telemetryFeed struct{ nc *nats.Conn }

func (f *telemetryFeed) Subscribe(ctx context.Context, deviceID string, fn func(api.TelemetryMessage)) error {
	subject := journal.TelemetryPrefix + ">"
	if deviceID != "" {
		subject = journal.TelemetrySubject(deviceID)
	}
	sub, err := f.nc.Subscribe(subject, func(m *nats.Msg) { fn(decodeTelemetry(m)) })
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	<-ctx.Done()
	return ctx.Err()
}

// decodeTelemetry is the API's view of a journal message. A header the
// codec cannot read leaves its field zero: the feed still shows the
// payload.
func decodeTelemetry(m *nats.Msg) api.TelemetryMessage {
	t, _ := journal.DecodeTelemetry(m.Subject, m.Header, m.Data)
	return api.TelemetryMessage{DeviceID: t.DeviceID, EnqueuedTime: t.EnqueuedTime, Payload: t.Payload,
		Properties: t.Properties, SystemProperties: t.SystemProperties}
}
