package mqttclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
)

// FailureKind buckets a failed Dial for tables of failures: "connack
// rc=5", or the phase and a short cause ("tls: EOF", "dial: connection
// refused", "connack: timeout").
func FailureKind(err error) string {
	var ce ConnackError
	if errors.As(err, &ce) {
		return fmt.Sprintf("connack rc=%d", byte(ce))
	}
	phase := "other"
	var pe *DialError
	if errors.As(err, &pe) {
		phase = pe.Phase
	}
	var ne net.Error
	var errno syscall.Errno
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return phase + ": EOF"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return phase + ": timeout"
	case errors.As(err, &errno):
		return phase + ": " + errno.Error()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if len(msg) > 60 {
		msg = msg[:60]
	}
	return phase + ": " + msg
}
