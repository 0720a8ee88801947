package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Outcome is what a network operation met, in words an operator acts on.
type Outcome string

const (
	Connected   Outcome = "connected"
	Refused     Outcome = "refused"     // a reset answered the SYN: nothing listens, or a firewall rejects
	TimedOut    Outcome = "timeout"     // no answer: packets dropped silently, or a peer that stalls
	Unreachable Outcome = "unreachable" // no route to the network or host
	Reset       Outcome = "reset"       // an established flow was reset
	Closed      Outcome = "closed"      // the peer (or something between) closed the flow
	OtherError  Outcome = "error"
)

// classify turns a network error into an Outcome: one place where Go's
// errors become the probe's vocabulary.
func classify(err error) Outcome {
	var ne net.Error
	switch {
	case err == nil:
		return Connected
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return Reset
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return Unreachable
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Closed
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return TimedOut
	}
	return OtherError
}

// errText is err's message for a report (the innermost useful part is
// usually enough, but the whole chain says more when it is short).
func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
