package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/twin"
)

// OperationRecorder journals finished twin, method and query operations
// (the C2DTwinOperations, DirectMethods and TwinQueries logs and their
// metrics).
type OperationRecorder interface {
	RecordOperation(op journal.Operation) error
}

// opRecord is a service-side operation being served: record fills in
// what the request says (caller, api-version, duration) and journals it.
type opRecord struct {
	s      *Server
	r      *http.Request
	start  time.Time
	policy string
	op     journal.Operation
}

func (s *Server) newOp(r *http.Request, policy, category, name, deviceID string) *opRecord {
	return &opRecord{s: s, r: r, start: time.Now(), policy: policy,
		op: journal.Operation{Category: category, OperationName: name, DeviceID: deviceID}}
}

// done journals the operation with its outcome: the status the caller
// got and, for a failure, IoT Hub's error code and what the caller read.
func (o *opRecord) done(status int, errCode, errMsg string) {
	if o.s.d.Operations == nil {
		return
	}
	op := o.op
	op.Status, op.ErrorCode, op.ErrorMessage = status, errCode, errMsg
	op.Caller, op.SDKVersion = o.policy, o.r.URL.Query().Get("api-version")
	op.DurationMs = time.Since(o.start).Milliseconds()
	_ = o.s.d.Operations.RecordOperation(op)
}

// failed journals a failed operation from its error.
func (o *opRecord) failed(err error) {
	status, _, msg, _ := classify(err)
	o.done(status, errorNumber(err, status), msg)
}

// errorNumber is IoT Hub's six-digit code for err, from the error when it
// carries one, else from the status.
func errorNumber(err error, status int) string {
	var te *twin.Error
	switch {
	case errors.As(err, &te):
		return strconv.Itoa(te.Number)
	case errors.Is(err, registry.ErrNotFound):
		return "404001"
	case errors.Is(err, registry.ErrPreconditionFailed):
		return "412001"
	case errors.Is(err, ErrDeviceNotOnline):
		return "404103"
	case errors.Is(err, ErrMethodTimeout):
		return "504101"
	case errors.Is(err, ErrThrottled):
		return "429001"
	case status == http.StatusBadRequest:
		return "400004"
	case status == http.StatusUnauthorized:
		return "401002"
	}
	return strconv.Itoa(status*1000 + 1)
}
