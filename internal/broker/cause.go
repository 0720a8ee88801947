package broker

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
)

// classify maps how mochi saw a session end to a reason and result
// (measured mapping: reference/deps.md §1.2). StopCause is read, not
// IsTakenOver, which mochi sets only after OnDisconnect may have run.
func classify(stopCause, err error) (presence.Reason, presence.Result, string) {
	cause := stopCause
	if cause == nil {
		cause = err
	}
	var netErr net.Error
	switch {
	case cause == nil:
		return presence.ReasonNetwork, presence.ResultClosedRemotely, "connection closed"
	case errors.Is(cause, packets.CodeDisconnect):
		return presence.ReasonClient, presence.ResultOK, ""
	case errors.Is(cause, packets.ErrSessionTakenOver):
		return presence.ReasonTakeover, presence.ResultTakeover, "a new connection with the same device id replaced this one"
	case errors.Is(cause, packets.ErrServerShuttingDown):
		return presence.ReasonServerShutdown, presence.ResultOK, "the hub is shutting down"
	case errors.As(cause, &netErr) && netErr.Timeout():
		return presence.ReasonKeepAlive, presence.ResultClosedRemotely, "no packet within 1.5 × keep-alive"
	case errors.Is(cause, io.EOF), errors.Is(cause, io.ErrUnexpectedEOF), errors.Is(cause, syscall.ECONNRESET),
		errors.Is(cause, syscall.EPIPE), errors.Is(cause, net.ErrClosed):
		return presence.ReasonNetwork, presence.ResultClosedRemotely, "connection closed without MQTT DISCONNECT"
	case errors.Is(cause, packets.ErrNotAuthorized):
		return presence.ReasonProtocolError, presence.ResultUnauthorized, "published to a topic the device may not use"
	}
	var code packets.Code
	if errors.As(cause, &code) {
		return presence.ReasonProtocolError, presence.ResultBadRequest, "protocol error: " + code.Reason
	}
	return presence.ReasonNetwork, presence.ResultClosedRemotely, cause.Error()
}
