package kql

import (
	"errors"

	"github.com/tether-hub/tether/internal/kql/syntax"
)

// Error codes, as the Log Analytics query API names its error classes.
const (
	CodeSyntax   = "SyntaxError"
	CodeSemantic = "SemanticError"
	CodeTimeout  = "QueryTimeout"
	CodeLimit    = "LimitExceeded"
	CodeCanceled = "QueryCanceled"
)

// Error is a mistake in a query (or a limit it ran into): the caller's
// fault, shown to the caller with its position and hint. Any other error
// from this package is the hub's fault.
type Error struct {
	Code string
	Pos  syntax.Pos // zero for errors of the whole query (limits)
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	if !e.Pos.IsValid() {
		if e.Hint != "" {
			return e.Msg + "; " + e.Hint
		}
		return e.Msg
	}
	return (&syntax.Error{Pos: e.Pos, Msg: e.Msg, Hint: e.Hint}).Error()
}

// semErr returns a semantic error at p.
func semErr(p syntax.Pos, format string, args ...any) *Error {
	se := syntax.Errorf(p, format, args...)
	return &Error{Code: CodeSemantic, Pos: p, Msg: se.Msg}
}

// withHint sets e's hint and returns e.
func (e *Error) withHint(h string) *Error { e.Hint = h; return e }

// asQueryError converts the parser's errors into *Error.
func asQueryError(err error) error {
	var se *syntax.Error
	if errors.As(err, &se) {
		return &Error{Code: CodeSyntax, Pos: se.Pos, Msg: se.Msg, Hint: se.Hint}
	}
	return err
}
