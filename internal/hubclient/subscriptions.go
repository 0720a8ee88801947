package hubclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Connection event types.
const (
	DeviceConnected    = "Microsoft.Devices.DeviceConnected"
	DeviceDisconnected = "Microsoft.Devices.DeviceDisconnected"
)

// CreateSubscription posts def to /api/v1/subscriptions and returns the
// status and the decoded answer.
func (c *Client) CreateSubscription(ctx context.Context, def map[string]any) (int, map[string]any, error) {
	code, body, err := c.Do(ctx, http.MethodPost, "/api/v1/subscriptions", def)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	if m == nil {
		m = map[string]any{"raw": string(body)}
	}
	return code, m, nil
}

// WebhookSubscription is the definition of an Event Grid webhook
// subscription of the connection events (maxEventsPerBatch 0: the hub's
// default).
func WebhookSubscription(name, endpoint string, maxEventsPerBatch int) map[string]any {
	props := map[string]any{"endpointUrl": endpoint}
	if maxEventsPerBatch > 0 {
		props["maxEventsPerBatch"] = maxEventsPerBatch
	}
	return map[string]any{
		"name":        name,
		"destination": map[string]any{"endpointType": "WebHook", "properties": props},
		"filter":      map[string]any{"includedEventTypes": []string{DeviceConnected, DeviceDisconnected}},
	}
}

// StreamSubscription is the definition of a subscription of the
// connection events to a NATS JetStream stream of the hub (its default
// name EVENTS_<NAME>, subjects events.<name>.<device>.<kind>), kept
// retentionHours (0: the hub's default).
func StreamSubscription(name string, retentionHours int) map[string]any {
	props := map[string]any{}
	if retentionHours > 0 {
		props["retentionInHours"] = retentionHours
	}
	return connectionSubscription(name, "Stream", props)
}

// CommandSubscription is the definition of a subscription of the
// connection events to a program of the hub's command directory (argv:
// the program and its arguments).
func CommandSubscription(name string, argv ...string) map[string]any {
	return connectionSubscription(name, "Command", map[string]any{"command": argv})
}

// EmailSubscription is the definition of a subscription of the connection
// events mailed to the addresses through the hub's SMTP server.
func EmailSubscription(name string, to ...string) map[string]any {
	return connectionSubscription(name, "Email", map[string]any{"to": to})
}

func connectionSubscription(name, kind string, props map[string]any) map[string]any {
	return map[string]any{
		"name":        name,
		"destination": map[string]any{"endpointType": kind, "properties": props},
		"filter":      map[string]any{"includedEventTypes": []string{DeviceConnected, DeviceDisconnected}},
	}
}

// SubscriptionStatus returns the delivery figures of a subscription and
// its last deliveries attempts (GET /api/v1/subscriptions/{name}/status),
// decoded as JSON objects.
func (c *Client) SubscriptionStatus(ctx context.Context, name string, deliveries int) (map[string]any, error) {
	path := fmt.Sprintf("/api/v1/subscriptions/%s/status?deliveries=%d", url.PathEscape(name), max(deliveries, 1))
	code, body, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, &StatusError{http.MethodGet, path, code, string(body)}
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("subscription status: %w", err)
	}
	return m, nil
}

// Subscribe creates def and requires it validated or checked (201,
// provisioningState Succeeded).
func (c *Client) Subscribe(ctx context.Context, def map[string]any) error {
	code, sub, err := c.CreateSubscription(ctx, def)
	if err != nil {
		return err
	}
	if code != http.StatusCreated || sub["provisioningState"] != "Succeeded" {
		return fmt.Errorf("create subscription %v: %d %v", def["name"], code, sub)
	}
	return nil
}

// DeleteSubscription removes a subscription (a missing one is not an
// error).
func (c *Client) DeleteSubscription(ctx context.Context, name string) error {
	code, body, err := c.Do(ctx, http.MethodDelete, "/api/v1/subscriptions/"+url.PathEscape(name), nil)
	if err != nil {
		return err
	}
	if code >= 300 && code != http.StatusNotFound {
		return &StatusError{http.MethodDelete, "/api/v1/subscriptions/" + name, code, string(body)}
	}
	return nil
}
