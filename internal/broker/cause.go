package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// cause is why a session ended, typed where it happened: the reason and
// IoT Hub result the log and metrics carry, a detail for people, and the
// reason code of the DISCONNECT an MQTT 5 device gets when the hub ends
// the session (0: none is sent, e.g. the device ended it).
type cause struct {
	reason presence.Reason
	result presence.Result
	detail string
	v5     byte
}

// MQTT 5 DISCONNECT reason codes the hub sends.
const (
	v5NotAuthorized    = 0x87
	v5ServerShutdown   = 0x8B
	v5KeepAliveTimeout = 0x8D
	v5SessionTakenOver = 0x8E
	v5TopicNameInvalid = 0x90
	v5PacketTooLarge   = 0x95
	v5QoSNotSupported  = 0x9B
	v5ProtocolError    = 0x82
	v5MalformedPacket  = 0x81
	v5ImplSpecific     = 0x83
	v5Unspecified      = 0x80
	v5ServerBusy       = 0x89
	v5QuotaExceeded    = 0x97
)

var (
	causeClient   = cause{reason: presence.ReasonClient, result: presence.ResultOK}
	causeTakeover = cause{reason: presence.ReasonTakeover, result: presence.ResultTakeover,
		detail: "a new connection with the same device id replaced this one", v5: v5SessionTakenOver}
	causeKeepAlive = cause{reason: presence.ReasonKeepAlive, result: presence.ResultClosedRemotely,
		detail: "no packet within 1.5 × keep-alive", v5: v5KeepAliveTimeout}
	causeShutdown = cause{reason: presence.ReasonServerShutdown, result: presence.ResultOK,
		detail: "the hub is shutting down", v5: v5ServerShutdown}
	causeDisabled = cause{reason: presence.ReasonDisabled, result: presence.ResultUnauthorized,
		detail: "the device was disabled in the registry", v5: v5NotAuthorized}
	causeDeleted = cause{reason: presence.ReasonDeleted, result: presence.ResultUnauthorized,
		detail: "the device was deleted from the registry", v5: v5NotAuthorized}
	causeNotStored = cause{reason: presence.ReasonServerError, result: presence.ResultServerError,
		detail: "the journal did not store the connect, so the hub closed the connection instead of acknowledging it", v5: v5Unspecified}
)

func causeTokenExpired(at time.Time) cause {
	return cause{reason: presence.ReasonTokenExpired, result: presence.ResultClosedRemotely, v5: v5NotAuthorized,
		detail: "SAS token expired at " + at.UTC().Format(time.RFC3339) + "; the hub closed the connection"}
}

// causeProtocol: a malformed or forbidden packet (400000).
func causeProtocol(v5 byte, format string, a ...any) cause {
	return cause{reason: presence.ReasonProtocolError, result: presence.ResultBadRequest, v5: v5, detail: fmt.Sprintf(format, a...)}
}

// causeForbidden: a packet the device is not authorised to send (401003).
func causeForbidden(format string, a ...any) cause {
	return cause{reason: presence.ReasonProtocolError, result: presence.ResultUnauthorized, v5: v5NotAuthorized, detail: fmt.Sprintf(format, a...)}
}

// causeOfReadError classifies how a session's read ended on its own (the
// hub did not ask it to end).
func causeOfReadError(err error) cause {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return causeKeepAlive
	case isClosedError(err):
		return cause{reason: presence.ReasonNetwork, result: presence.ResultClosedRemotely, detail: "connection closed without MQTT DISCONNECT"}
	}
	return cause{reason: presence.ReasonNetwork, result: presence.ResultClosedRemotely, detail: "connection failed: " + err.Error()}
}

// causeWriteFailed: the hub could not write to the device (gone, or not
// reading within the write timeout).
func causeWriteFailed(err error) cause {
	return cause{reason: presence.ReasonNetwork, result: presence.ResultClosedRemotely, detail: "the hub could not write to the connection: " + err.Error()}
}

// isClosedError: the peer closed or reset the connection.
func isClosedError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// isTimeout: a client that connected and then said nothing (half-open TLS,
// slow CONNECT) is recorded even though it sent no byte; a client that
// connected and closed without a byte (a port probe) is not.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
