package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/broker"
)

// methodAdapter gives the API the broker's direct methods with the API's
// errors.
type methodAdapter struct{ a *App }

func (m methodAdapter) InvokeMethod(ctx context.Context, deviceID string, call api.MethodCall) (api.MethodResult, error) {
	res, err := m.a.invokeMethod(ctx, deviceID, broker.MethodCall{
		Name: call.Name, Payload: call.Payload, ResponseTimeout: call.ResponseTimeout, ConnectTimeout: call.ConnectTimeout,
	})
	switch {
	case errors.Is(err, broker.ErrDeviceNotOnline):
		return api.MethodResult{}, fmt.Errorf("%w: %w", api.ErrDeviceNotOnline, err)
	case errors.Is(err, broker.ErrMethodTimeout):
		return api.MethodResult{}, fmt.Errorf("%w: %w", api.ErrMethodTimeout, err)
	case errors.Is(err, broker.ErrMethodThrottled):
		return api.MethodResult{}, fmt.Errorf("%w: %w", api.ErrThrottled, err)
	case err != nil:
		return api.MethodResult{}, err
	}
	return api.MethodResult{Status: res.Status, Payload: methodPayload(res.Payload)}, nil
}

// methodPayload is the device's answer as the JSON the caller gets: the
// SDKs send JSON; an empty answer is null, and anything else is passed on
// as a JSON string rather than failing the call.
func methodPayload(p []byte) json.RawMessage {
	switch {
	case len(p) == 0:
		return json.RawMessage("null")
	case json.Valid(p):
		return json.RawMessage(p)
	}
	b, _ := json.Marshal(string(p))
	return b
}
