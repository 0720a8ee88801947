package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/twin"
)

// ErrThrottled may be wrapped by dependencies (C2D) to answer 429.
var ErrThrottled = errors.New("throttled")

// classify is the one table from error kinds to HTTP status and IoT Hub
// error code (azure-sdk-wire §6 lists how the SDKs read them). Registry
// errors carry their own; unknown errors are 500 and their text is not
// shown to the caller.
func classify(err error) (status int, code, msg string, internal bool) {
	var re *registry.Error
	var te *twin.Error
	switch {
	case errors.As(err, &re):
		return re.Status, re.Code, re.Message, false
	case errors.As(err, &te):
		return te.Status, te.Code, te.Message, false
	case errors.Is(err, registry.ErrNotFound):
		return http.StatusNotFound, registry.CodeDeviceNotFound, err.Error(), false
	case errors.Is(err, registry.ErrExists):
		return http.StatusConflict, registry.CodeDeviceAlreadyExists, err.Error(), false
	case errors.Is(err, registry.ErrPreconditionFailed):
		return http.StatusPreconditionFailed, registry.CodePreconditionFailed, err.Error(), false
	case errors.Is(err, registry.ErrInvalid):
		return http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error(), false
	case errors.Is(err, registry.ErrUnauthorized):
		return http.StatusUnauthorized, registry.CodeUnauthorized, err.Error(), false
	case errors.Is(err, ErrDeviceNotOnline):
		return http.StatusNotFound, "DeviceNotOnline", err.Error(), false
	case errors.Is(err, ErrMethodTimeout):
		return http.StatusGatewayTimeout, "GatewayTimeout", err.Error(), false
	case errors.Is(err, ErrThrottled):
		return http.StatusTooManyRequests, "ThrottlingException", err.Error(), false
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "GatewayTimeout", "the hub did not finish the request in time", true
	}
	return http.StatusInternalServerError, "ServerError", "the hub failed to process the request", true
}

// fail answers with err in the style of fail, logging errors that are the
// hub's fault.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, write errorWriter) {
	status, code, msg, internal := classify(err)
	if internal {
		id := w.Header().Get("x-ms-request-id")
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.EscapedPath(), "request_id", id, "err", err)
		msg += " (see the hub log, request id " + id + ")"
	}
	write(w, r, status, code, msg)
}

// azureErrorBody is IoT Hub's error shape; the SDKs read the ErrorCode out
// of Message.
type azureErrorBody struct {
	Message          string `json:"Message"`
	ExceptionMessage string `json:"ExceptionMessage"`
}

func (s *Server) azureError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	writeJSON(w, status, azureErrorBody{
		Message: fmt.Sprintf("ErrorCode:%s;%s", code, msg),
		ExceptionMessage: fmt.Sprintf("Tracking ID:%s-TimeStamp:%s",
			w.Header().Get("x-ms-request-id"), s.d.Now().UTC().Format(time.RFC3339)),
	})
}

type v1ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *Server) v1Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	var b v1ErrorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

// unavailable answers 503 for a dependency the hub was built without.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, what string) {
	s.v1Error(w, r, http.StatusServiceUnavailable, "ServiceUnavailable", what+" is not available on this hub")
}
