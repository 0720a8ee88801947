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

// Subscribe creates def and requires it validated (201, provisioningState
// Succeeded).
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
