package events

import (
	"errors"
	"strings"
)

// Sentinel errors.
var (
	// ErrInvalid is matched (errors.Is) by every *ValidationError.
	ErrInvalid = errors.New("invalid subscription")
	// ErrNotFound: no subscription of that name.
	ErrNotFound = errors.New("subscription not found")
	// ErrExists: a subscription of that name (in any case) exists.
	ErrExists = errors.New("subscription already exists")
	// ErrConflict: the subscription changed since it was read.
	ErrConflict = errors.New("subscription changed concurrently")
)

// FieldError is one problem of a subscription definition, at a JSON path
// such as "filter.advancedFilters[2].values[0]".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ValidationError lists every problem of a subscription definition.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	for i, fe := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Unwrap gives each problem as an error.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		out[i] = fe
	}
	return out
}
