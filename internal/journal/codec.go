package journal

import (
	"errors"
	"fmt"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// ErrMalformed is wrapped by every error of a Decode function: the
// message is not what the journal writes.
var ErrMalformed = errors.New("journal: malformed message")

// ConnectionEventMsg is ev as a message for the Publisher: its subject,
// the digest of its id as Nats-Msg-Id (ConnMsgID), its JSON (encoded on the publisher's goroutine)
// and ev.Recorded told when the stream has it.
func ConnectionEventMsg(ev presence.ConnectionEvent) Msg {
	return Msg{
		Subject: ConnSubject(ev.DeviceID, string(ev.Kind)),
		ID:      ConnMsgID(ev.ID),
		Key:     ev.DeviceID, // a device's events are stored in the order they happened
		Append:  func(b []byte) ([]byte, error) { return appendConnectionEventChecked(b, &ev) },
		Done:    ev.Recorded,
	}
}

// EncodeConnectionEvent is the payload of ev in TETHER_CONN: its JSON,
// keys as presence.ConnectionEvent's tags. Stored events are read back
// by every later version, so the form only ever gains optional keys.
func EncodeConnectionEvent(ev presence.ConnectionEvent) ([]byte, error) {
	return appendConnectionEventChecked(make([]byte, 0, 768), &ev)
}

// appendConnectionEventChecked is EncodeConnectionEvent appending to b.
func appendConnectionEventChecked(b []byte, ev *presence.ConnectionEvent) ([]byte, error) {
	b, err := appendConnectionEvent(b, ev)
	if err != nil {
		return nil, fmt.Errorf("journal: encoding connection event %s: %w", ev.ID, err)
	}
	return b, nil
}

// DecodeConnectionEvent reads a TETHER_CONN payload. An auth-failed
// refusal stored without an AuthFailure (before the field existed) is
// given one from its Detail, so consumers only see typed causes.
func DecodeConnectionEvent(data []byte) (presence.ConnectionEvent, error) {
	return decodeConnectionEvent(data, false)
}

// DecodeConnectionEventShared is DecodeConnectionEvent for a payload no
// one changes afterwards, such as a NATS message's own copy of it: the
// event's strings are slices of data instead of a copy of it, one
// allocation of the payload's size less per decode (each reader of
// TETHER_CONN decodes every event; the copies were ~8 % of what the hub
// allocated at 5,000 events/s). Whatever keeps one of the strings keeps
// data's memory.
func DecodeConnectionEventShared(data []byte) (presence.ConnectionEvent, error) {
	return decodeConnectionEvent(data, true)
}

func decodeConnectionEvent(data []byte, shared bool) (presence.ConnectionEvent, error) {
	e, err := parseConnectionEvent(data, shared)
	if err != nil {
		return presence.ConnectionEvent{}, fmt.Errorf("%w: connection event: %w", ErrMalformed, err)
	}
	if needsAuthFailure(e.Kind, e.Reason, e.AuthFailure) {
		e.AuthFailure = legacyAuthFailure([]byte(e.Detail))
	}
	return e, nil
}

// ConnectionSummary is the part of a connection event that counting it
// needs.
type ConnectionSummary struct {
	Kind        presence.Kind
	Time        time.Time
	Reason      presence.Reason
	Result      presence.Result
	Protocol    string
	AuthFailure presence.AuthFailure
	// Count is how many attempts a refusal stands for (0 means 1; see
	// presence.ConnectionEvent.Count).
	Count int
	// TokenRenewal marks a connect that completed a SAS-token renewal
	// (presence.ConnectionEvent.TokenRenewal).
	TokenRenewal bool
}

// DecodeConnectionSummary reads the summary of a TETHER_CONN payload,
// several times faster than DecodeConnectionEvent and without allocating
// for the events presence writes (BenchmarkDecodeConnection). Fields
// outside the summary are not checked beyond being well-formed JSON.
func DecodeConnectionSummary(data []byte) (ConnectionSummary, error) {
	s, err := parseSummary(data)
	if err != nil {
		return ConnectionSummary{}, fmt.Errorf("%w: connection event: %w", ErrMalformed, err)
	}
	return ConnectionSummary{Kind: s.Kind, Time: s.Time, Reason: s.Reason, Result: s.Result,
		Protocol: s.Protocol, AuthFailure: s.AuthFailure, Count: s.Count, TokenRenewal: s.TokenRenewal}, nil
}
