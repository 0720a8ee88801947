package twin

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is a rejected twin operation in IoT Hub's terms: the HTTP status the
// REST API answers with (also the status of the MQTT response topic
// $iothub/twin/res/{status}/), IoT Hub's ErrorCode name, its six-digit number
// and a message that names the offending key path and the limit.
//
// Compare with errors.As, or errors.Is against the sentinels below (same
// Number).
type Error struct {
	Status  int    // HTTP status: 400, 412
	Code    string // IoT Hub ErrorCode name: "ArgumentInvalid", "IotHubFormatError", "PreconditionFailed"
	Number  int    // IoT Hub error number: 400004, 400006, 412001
	Message string
}

// Sentinels for errors.Is; only Number is compared.
var (
	// ErrArgumentInvalid: well-formed JSON that breaks a twin rule (key,
	// value, depth, size, shape, a service write to reported properties).
	ErrArgumentInvalid = &Error{Status: http.StatusBadRequest, Code: "ArgumentInvalid", Number: 400004}
	// ErrFormat: the body is not JSON at all (IoT Hub's IotHubFormatError).
	ErrFormat = &Error{Status: http.StatusBadRequest, Code: "IotHubFormatError", Number: 400006}
	// ErrPreconditionFailed: an If-Match etag that does not match.
	ErrPreconditionFailed = &Error{Status: http.StatusPreconditionFailed, Code: "PreconditionFailed", Number: 412001}
)

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is reports whether target is an *Error with the same Number.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Number == e.Number
}

// RESTMessage is the Message field of IoT Hub's REST error body
// ({"Message":"ErrorCode:<Code>;<text>","ExceptionMessage":…}); the service
// SDKs read the ErrorCode out of it.
func (e *Error) RESTMessage() string { return "ErrorCode:" + e.Code + ";" + e.Message }

// DeviceJSON is the body IoT Hub publishes with an error status on
// $iothub/twin/res/{status}/?$rid=…:
// {"errorCode":400004,"trackingId":…,"message":…,"timestampUtc":…}.
// The Node device SDK fails the request when errorCode is present and shows
// message. trackingID may be empty (then it is left out).
func (e *Error) DeviceJSON(trackingID string, now time.Time) []byte {
	b := append([]byte(`{"errorCode":`), strconv.Itoa(e.Number)...)
	if trackingID != "" {
		b = appendString(append(b, `,"trackingId":`...), trackingID)
	}
	b = appendString(append(b, `,"message":`...), e.Message)
	b = appendString(append(b, `,"timestampUtc":`...), FormatTime(now))
	return append(b, '}')
}

// PreconditionFailed is the 412 for an If-Match that does not match the
// twin's etag (see MatchETag).
func PreconditionFailed(ifMatch, current string) *Error {
	return newError(ErrPreconditionFailed, "If-Match %s does not match the twin's etag %q", ifMatch, current)
}

func newError(kind *Error, format string, a ...any) *Error {
	return &Error{Status: kind.Status, Code: kind.Code, Number: kind.Number, Message: fmt.Sprintf(format, a...)}
}

func invalid(format string, a ...any) *Error { return newError(ErrArgumentInvalid, format, a...) }
