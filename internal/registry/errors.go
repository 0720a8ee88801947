package registry

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Store implementations return the first three; Registry
// methods return an *Error that unwraps to one of them.
var (
	ErrNotFound           = errors.New("not found")
	ErrExists             = errors.New("already exists")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrInvalid            = errors.New("invalid argument")
	ErrUnauthorized       = errors.New("unauthorized")
)

// IoT Hub error codes (the "ErrorCode:" part of an error body) used here.
const (
	CodeDeviceNotFound      = "DeviceNotFound"
	CodeDeviceAlreadyExists = "DeviceAlreadyExists"
	CodePreconditionFailed  = "PreconditionFailed"
	CodeArgumentInvalid     = "ArgumentInvalid"
	CodeUnauthorized        = "IotHubUnauthorizedAccess"
)

// Error is what a registry caller did wrong, in the terms IoT Hub reports
// it: an ErrorCode, the HTTP status the REST API answers with, and a
// message meant for the caller. Unwrap gives the sentinel.
type Error struct {
	Code    string
	Status  int
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Err }

func notFound(id string) *Error {
	return &Error{Code: CodeDeviceNotFound, Status: http.StatusNotFound, Err: ErrNotFound,
		Message: fmt.Sprintf("device '%s' is not registered", id)}
}

func alreadyExists(id string) *Error {
	return &Error{Code: CodeDeviceAlreadyExists, Status: http.StatusConflict, Err: ErrExists,
		Message: fmt.Sprintf("a device with id '%s' is already registered", id)}
}

func preconditionFailed(format string, a ...any) *Error {
	return &Error{Code: CodePreconditionFailed, Status: http.StatusPreconditionFailed, Err: ErrPreconditionFailed,
		Message: fmt.Sprintf(format, a...)}
}

func invalid(format string, a ...any) *Error {
	return &Error{Code: CodeArgumentInvalid, Status: http.StatusBadRequest, Err: ErrInvalid,
		Message: fmt.Sprintf(format, a...)}
}

func unauthorized(format string, a ...any) *Error {
	return &Error{Code: CodeUnauthorized, Status: http.StatusUnauthorized, Err: ErrUnauthorized,
		Message: fmt.Sprintf(format, a...)}
}
