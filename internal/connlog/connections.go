package connlog

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/tether-hub/tether/internal/presence"
)

// TokenExpiryGap separates the two records of a token expiry: the 404104
// record is stamped this long after the 401003 one, so every store orders
// them the same way by TimeGenerated alone.
const TokenExpiryGap = time.Microsecond

// ErrUnknownKind is returned for a ConnectionEvent whose Kind this version
// does not know.
var ErrUnknownKind = errors.New("connlog: unknown connection event kind")

// FromConnectionEvent turns one connection event into its Connections
// records, as IoT Hub logs them (shared/reference/iothub-facts.md §2, §3):
//
//	Connected                          → deviceConnect    Information
//	Disconnected, Result.Type ""       → deviceDisconnect Information (client DISCONNECT…)
//	Disconnected, Result               → deviceDisconnect Error with that result
//	Disconnected, Reason token-expired → deviceDisconnect Error 401003 IoTHubUnauthorized, then
//	                                     deviceDisconnect Error 404104 DeviceConnectionClosedRemotely
//	                                     (TokenExpiryGap later), whatever the Result
//	Refused                            → deviceConnect    Error with its Result (or one implied
//	                                     by its Reason when it has none); Count records when the
//	                                     event stands for several attempts
//
// Error records carry statusCode (the HTTP class) and an errorMessage with
// the aka.ms link of the code, followed by "; " and the event's Detail.
// Records get _ItemId ItemID(Connections, e.ID, n, e.Time) and CorrelationId
// e.ID.
func FromConnectionEvent(res Resource, e presence.ConnectionEvent) ([]Record, error) {
	return AppendConnectionEvent(nil, res, e)
}

// AppendConnectionEvent is FromConnectionEvent appending to dst (dst
// unchanged on an error): the log writer gathers a batch's records in one
// slice instead of one of its own per event.
func AppendConnectionEvent(dst []Record, res Resource, e presence.ConnectionEvent) ([]Record, error) {
	switch e.Kind {
	case presence.Connected:
		return append(dst, connRecord(res, e, 0, OpDeviceConnect, presence.ResultOK, "")), nil
	case presence.Disconnected:
		if e.Reason == presence.ReasonTokenExpired {
			first := connRecord(res, e, 0, OpDeviceDisconnect, presence.ResultUnauthorized,
				errorMessage(disconnectMessage, presence.ResultUnauthorized, e.Detail))
			second := connRecord(res, e, 1, OpDeviceDisconnect, presence.ResultClosedRemotely,
				errorMessage(disconnectMessage, presence.ResultClosedRemotely, ""))
			second.TimeGenerated = second.TimeGenerated.Add(TokenExpiryGap)
			return append(dst, first, second), nil
		}
		return append(dst, connRecord(res, e, 0, OpDeviceDisconnect, e.Result,
			errorMessage(disconnectMessage, e.Result, e.Detail))), nil
	case presence.Refused:
		result := e.Result
		if result.Type == "" {
			result = refusalResult(e.Reason)
		}
		msg := errorMessage(refusalMessage, result, e.Detail)
		// An event standing for several attempts (Count) gives a record
		// each, as every attempt was refused.
		for n := range e.Attempts() {
			dst = append(dst, connRecord(res, e, n, OpDeviceConnect, result, msg))
		}
		return dst, nil
	}
	return dst, fmt.Errorf("%w: %q (event %s)", ErrUnknownKind, e.Kind, e.ID)
}

const (
	disconnectMessage = "Device disconnected, see cause and resolution at https://aka.ms/iothub"
	refusalMessage    = "Device connection refused, see cause and resolution at https://aka.ms/iothub"
)

// errorMessage is "" on success, else prefix+code, then "; detail".
func errorMessage(prefix string, r presence.Result, detail string) string {
	if r.Type == "" {
		return ""
	}
	msg := prefix + r.Type
	if detail != "" {
		msg += "; " + detail
	}
	return msg
}

// refusalResult is the result of a refusal that presence sent without one.
func refusalResult(r presence.Reason) presence.Result {
	switch r {
	case presence.ReasonConnectTimeout:
		return presence.ResultTimeout
	case presence.ReasonServerError, presence.ReasonServerShutdown:
		return presence.ResultServerError
	case presence.ReasonProtocolError:
		return presence.ResultBadRequest
	}
	return presence.ResultUnauthorized // auth-failed, disabled, deleted, unknown
}

func connRecord(res Resource, e presence.ConnectionEvent, n int, op string, result presence.Result, msg string) Record {
	level := LevelInformation
	if result.Type != "" {
		level = LevelError
	}
	protocol := protocolName(e.Protocol)
	props := ConnectionProperties{
		DeviceID:          e.DeviceID,
		Protocol:          protocol,
		AuthType:          authTypeJSON(e.AuthType),
		MaskedIP:          e.MaskedIP,
		StatusCode:        statusCode(result.Type),
		ErrorMessage:      msg,
		SDKVersion:        e.SDKVersion,
		ModuleID:          e.ModuleID,
		SessionID:         e.SessionID,
		SequenceNumber:    e.Sequence,
		Reason:            string(e.Reason),
		ConnectDurationMs: e.DurationMs,
		IdleMs:            e.IdleMs,
		TokenExpiry:       formatTime(e.TokenExpiry),
		ProtocolVersion:   e.ProtocolVersion,
		KeepAlive:         e.KeepAliveSeconds,
		TokenRenewal:      e.TokenRenewal,
		RenewalOf:         e.RenewalOf,
	}
	rec := Record{
		ItemID:            ItemID(CategoryConnections, e.ID, n, e.Time),
		TimeGenerated:     e.Time.UTC(),
		Category:          CategoryConnections,
		OperationName:     op,
		Level:             level,
		ResultType:        result.Type,
		ResultDescription: result.Description,
		Properties:        ownedString(props.appendJSON(make([]byte, 0, 512))),
		CorrelationID:     e.ID,
		CallerIPAddress:   e.MaskedIP,
		DeviceID:          e.DeviceID,
		Protocol:          protocol,
		SDKVersion:        e.SDKVersion,
		SequenceNumber:    e.Sequence,
	}
	res.stamp(&rec, e.Hub)
	return rec
}

// ownedString is b as a string without a copy: b is the caller's own,
// never written again (one allocation per record instead of two).
func ownedString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
