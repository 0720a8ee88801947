package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
)

// Direct methods: POST /twins/{id}/methods?api-version=2021-04-12 with
// {methodName, payload, responseTimeoutInSeconds, connectTimeoutInSeconds}
// (the azure-iothub Client.invokeDeviceMethod body) answers
// {status, payload} with the device's status and JSON.

// MethodInvoker calls a direct method on a device and waits for the answer.
// Errors may wrap ErrDeviceNotOnline, ErrMethodTimeout or ErrThrottled.
type MethodInvoker interface {
	InvokeMethod(ctx context.Context, deviceID string, call MethodCall) (MethodResult, error)
}

// MethodCall is a validated invocation.
type MethodCall struct {
	Name                            string
	Payload                         json.RawMessage
	ResponseTimeout, ConnectTimeout time.Duration
}

// MethodResult is the device's answer.
type MethodResult struct {
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload"`
}

// Errors of a direct method call, with IoT Hub's codes.
var (
	ErrDeviceNotOnline = errors.New("404103 DeviceNotOnline")
	ErrMethodTimeout   = errors.New("504101 GatewayTimeout")
)

// IoT Hub's bounds on a call (REST reference for Invoke Device Method).
const (
	maxMethodPayload       = 128 << 10
	maxMethodNameLen       = 100
	defaultResponseTimeout = 30 * time.Second
	minResponseTimeout     = 5 * time.Second
	maxResponseTimeout     = 300 * time.Second
	maxConnectTimeout      = 300 * time.Second
)

// methodRequest is the body the service SDKs send.
type methodRequest struct {
	MethodName               string          `json:"methodName"`
	Payload                  json.RawMessage `json:"payload"`
	ResponseTimeoutInSeconds *float64        `json:"responseTimeoutInSeconds"`
	ConnectTimeoutInSeconds  *float64        `json:"connectTimeoutInSeconds"`
}

// postMethod serves POST /twins/{id}/methods.
func (s *Server) postMethod(w http.ResponseWriter, r *http.Request, id string) {
	if s.d.Methods == nil {
		s.azureError(w, r, http.StatusServiceUnavailable, "ServiceUnavailable", "direct methods are not available on this hub")
		return
	}
	policy, ok := s.authorize(w, r, registry.ServiceConnect, s.azureError)
	if !ok {
		return
	}
	body, ok := s.readBody(w, r, maxMethodPayload+4<<10, s.azureError)
	if !ok {
		return
	}
	op := s.newOp(r, policy, journal.CategoryDirectMethods, journal.OpSend, id)
	call, err := decodeMethodCall(body)
	if err != nil {
		op.done(http.StatusBadRequest, "400004", err.Error())
		s.azureError(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error())
		return
	}
	op.op.MethodName, op.op.RequestSize = call.Name, int64(len(call.Payload))
	if _, found := s.d.Registry.Device(id); !found {
		msg := fmt.Sprintf("device %q is not registered", id)
		op.done(http.StatusNotFound, "404001", msg)
		s.azureError(w, r, http.StatusNotFound, registry.CodeDeviceNotFound, msg)
		return
	}
	res, err := s.d.Methods.InvokeMethod(r.Context(), id, call)
	if err != nil {
		op.failed(err)
	}
	switch {
	case errors.Is(err, ErrDeviceNotOnline):
		s.azureError(w, r, http.StatusNotFound, "DeviceNotOnline", err.Error())
	case errors.Is(err, ErrMethodTimeout):
		s.azureError(w, r, http.StatusGatewayTimeout, "GatewayTimeout", err.Error())
	case err != nil:
		s.fail(w, r, err, s.azureError)
	default:
		if len(res.Payload) == 0 {
			res.Payload = json.RawMessage("null")
		}
		op.op.ResponseSize = int64(len(res.Payload))
		op.done(res.Status, "", "")
		writeJSON(w, http.StatusOK, res)
	}
}

// decodeMethodCall checks a method request against IoT Hub's rules.
func decodeMethodCall(body []byte) (MethodCall, error) {
	var req methodRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return MethodCall{}, fmt.Errorf("the method request is not valid JSON of the shape {\"methodName\":…,\"payload\":…,\"responseTimeoutInSeconds\":…,\"connectTimeoutInSeconds\":…}: %v", err)
	}
	if err := validMethodName(req.MethodName); err != nil {
		return MethodCall{}, err
	}
	call := MethodCall{Name: req.MethodName, Payload: req.Payload, ResponseTimeout: defaultResponseTimeout}
	if len(call.Payload) == 0 {
		call.Payload = json.RawMessage("null")
	}
	if len(call.Payload) > maxMethodPayload {
		return MethodCall{}, fmt.Errorf("the payload is %d bytes; IoT Hub's limit is %d", len(call.Payload), maxMethodPayload)
	}
	if t := req.ResponseTimeoutInSeconds; t != nil {
		d := time.Duration(*t * float64(time.Second))
		if d < minResponseTimeout || d > maxResponseTimeout {
			return MethodCall{}, fmt.Errorf("responseTimeoutInSeconds %v is out of range: %d to %d", *t, int(minResponseTimeout.Seconds()), int(maxResponseTimeout.Seconds()))
		}
		call.ResponseTimeout = d
	}
	if t := req.ConnectTimeoutInSeconds; t != nil {
		d := time.Duration(*t * float64(time.Second))
		if d < 0 || d > maxConnectTimeout {
			return MethodCall{}, fmt.Errorf("connectTimeoutInSeconds %v is out of range: 0 to %d", *t, int(maxConnectTimeout.Seconds()))
		}
		call.ConnectTimeout = d
	}
	return call, nil
}

// validMethodName keeps names to what fits in the request topic
// $iothub/methods/POST/{name}/?$rid=…: no topic separators, wildcards or
// query characters.
func validMethodName(name string) error {
	switch {
	case name == "":
		return errors.New("methodName is required")
	case len(name) > maxMethodNameLen:
		return fmt.Errorf("methodName is %d bytes; the limit is %d", len(name), maxMethodNameLen)
	case strings.ContainsAny(name, "/#+?$&=\x00"):
		return fmt.Errorf("methodName %q may not contain / # + ? $ & = (it goes into an MQTT topic)", name)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("methodName %q contains a control character", name)
		}
	}
	return nil
}
