package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/tether-hub/tether/internal/telemetry"
)

// ErrUnknownDevice is returned for a message to a device the registry does
// not hold.
var ErrUnknownDevice = errors.New("no such device")

// SendC2D publishes a cloud-to-device message at QoS 1 on
// devices/{id}/messages/devicebound/{props}. A device with a persistent
// session (clean-session 0) that is offline gets it when it reconnects.
func (b *Broker) SendC2D(_ context.Context, deviceID string, payload []byte, props map[string]string, messageID string) error {
	if _, _, found := b.opts.Devices(deviceID); !found {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, deviceID)
	}
	if len(payload) > b.opts.MaxMessageSize {
		return fmt.Errorf("message is %d bytes; the limit is %d", len(payload), b.opts.MaxMessageSize)
	}
	if err := b.srv.Publish(telemetry.C2DTopic(deviceID, props, messageID), payload, false, 1); err != nil {
		return fmt.Errorf("sending to %q: %w", deviceID, err)
	}
	return nil
}
