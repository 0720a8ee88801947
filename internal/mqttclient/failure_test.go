package mqttclient

import (
	"errors"
	"io"
	"syscall"
	"testing"
)

func TestFailureKind(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&DialError{Phase: PhaseConnack, Err: ConnackError(5)}, "connack rc=5"},
		{&DialError{Phase: PhaseTLS, Err: errors.New("x: EOF")}, "tls: EOF"},
		{&DialError{Phase: PhaseConnack, Err: io.ErrUnexpectedEOF}, "connack: EOF"},
		{&DialError{Phase: PhaseDial, Err: syscall.ECONNREFUSED}, "dial: connection refused"},
		{errors.New("registry: boom"), "other: boom"},
	}
	for _, c := range cases {
		if got := FailureKind(c.err); got != c.want {
			t.Errorf("FailureKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
