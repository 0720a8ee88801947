package connlog

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// unmarshalConnectionEvent decodes a journal message's presence.ConnectionEvent
// with exactly the result of json.Unmarshal, which it falls back to for
// anything outside the fast path.
//
// The fast path reads the JSON that presence writes: one object of the
// event's keys spelled as its tags, strings of printable ASCII without
// escapes, integers, booleans, RFC 3339 times, and the result object. Any
// other input — an unknown or differently cased key, an escape, non-ASCII
// text, null, a fraction, a syntax error — goes to json.Unmarshal, so
// the fast path never has to reproduce encoding/json's handling of it.
// FuzzDecodeConnectionEvent compares the two on arbitrary input, and
// TestDecodeKnowsEveryField fails when presence adds a field this does not
// know (which would send every event down the slow path).
func unmarshalConnectionEvent(data []byte) (presence.ConnectionEvent, error) {
	var e presence.ConnectionEvent
	if d := newEventDecoder(data); d.event(&e) {
		return e, nil
	}
	e = presence.ConnectionEvent{}
	err := json.Unmarshal(data, &e)
	return e, err
}

func newEventDecoder(data []byte) eventDecoder {
	return eventDecoder{b: data, s: string(data)}
}

// eventDecoder is the fast path; every method reports false to give up.
// s holds b's bytes: the event's strings are slices of it (one allocation
// for all of them).
type eventDecoder struct {
	b []byte
	s string
	i int
}

// eventKeys are the keys the fast path knows, for TestDecodeKnowsEveryField.
var eventKeys = []string{
	"id", "kind", "time", "hub", "deviceId", "moduleId", "sequenceNumber", "reason", "result",
	"detail", "protocol", "protocolVersion", "maskedIpAddress", "sdkVersion", "authType",
	"sessionId", "connectedAt", "durationMs", "tokenExpiry", "cleanSession", "keepAlive",
	"tokenRenewal", "renewalOf",
}

func (d *eventDecoder) event(e *presence.ConnectionEvent) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return d.end()
	}
	for {
		key, ok := d.rawString()
		if !ok || !d.next(':') {
			return false
		}
		var s string
		switch string(key) {
		case "id":
			ok = d.str(&e.ID)
		case "kind":
			ok = d.str(&s)
			e.Kind = presence.Kind(s)
		case "time":
			ok = d.time(&e.Time)
		case "hub":
			ok = d.str(&e.Hub)
		case "deviceId":
			ok = d.str(&e.DeviceID)
		case "moduleId":
			ok = d.str(&e.ModuleID)
		case "sequenceNumber":
			ok = d.str(&e.Sequence)
		case "reason":
			ok = d.str(&s)
			e.Reason = presence.Reason(s)
		case "result":
			ok = d.result(&e.Result)
		case "detail":
			ok = d.str(&e.Detail)
		case "protocol":
			ok = d.str(&e.Protocol)
		case "protocolVersion":
			var n uint64
			ok = d.uint(&n, 8)
			e.ProtocolVersion = byte(n)
		case "maskedIpAddress":
			ok = d.str(&e.MaskedIP)
		case "sdkVersion":
			ok = d.str(&e.SDKVersion)
		case "authType":
			ok = d.str(&e.AuthType)
		case "sessionId":
			ok = d.str(&e.SessionID)
		case "connectedAt":
			ok = d.time(&e.ConnectedAt)
		case "durationMs":
			ok = d.int(&e.DurationMs)
		case "tokenExpiry":
			ok = d.time(&e.TokenExpiry)
		case "cleanSession":
			ok = d.bool(&e.CleanSession)
		case "keepAlive":
			var n uint64
			ok = d.uint(&n, 16)
			e.KeepAliveSeconds = uint16(n)
		case "tokenRenewal":
			ok = d.bool(&e.TokenRenewal)
		case "renewalOf":
			ok = d.str(&e.RenewalOf)
		default:
			return false
		}
		if !ok {
			return false
		}
		if d.next('}') {
			return d.end()
		}
		if !d.next(',') {
			return false
		}
	}
}

func (d *eventDecoder) result(r *presence.Result) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	for {
		key, ok := d.rawString()
		if !ok || !d.next(':') {
			return false
		}
		switch string(key) {
		case "Type":
			ok = d.str(&r.Type)
		case "Description":
			ok = d.str(&r.Description)
		default:
			return false
		}
		if !ok {
			return false
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

func (d *eventDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next consumes c (after white space) if it comes next.
func (d *eventDecoder) next(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (d *eventDecoder) end() bool {
	d.space()
	return d.i == len(d.b)
}

// rawString reads a string of printable ASCII without escapes (its bytes
// are then its value).
func (d *eventDecoder) rawString() ([]byte, bool) {
	if !d.next('"') {
		return nil, false
	}
	for j := d.i; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			s := d.b[d.i:j]
			d.i = j + 1
			return s, true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

func (d *eventDecoder) str(dst *string) bool {
	s, ok := d.rawString()
	if ok {
		end := d.i - 1 // before the closing quote
		*dst = d.s[end-len(s) : end]
	}
	return ok
}

// time reads what time.Time.UnmarshalJSON accepts: the text between the
// quotes, parsed as strict RFC 3339 (UnmarshalText does the same).
func (d *eventDecoder) time(dst *time.Time) bool {
	s, ok := d.rawString()
	return ok && dst.UnmarshalText(s) == nil
}

func (d *eventDecoder) bool(dst *bool) bool {
	d.space()
	switch {
	case len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true":
		*dst, d.i = true, d.i+4
	case len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false":
		*dst, d.i = false, d.i+5
	default:
		return false
	}
	return d.delimited()
}

// integer reads a JSON number that is an integer: an optional minus, then
// 0 or digits not starting with 0; no fraction or exponent.
func (d *eventDecoder) integer() ([]byte, bool) {
	d.space()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	n := d.i - digits
	if n == 0 || (n > 1 && d.b[digits] == '0') || !d.delimited() {
		return nil, false
	}
	return d.b[start:d.i], true
}

// delimited reports whether the value just read ends there (the next
// byte, if any, is white space, ',' or '}'), so "12a" or "truex" give up.
func (d *eventDecoder) delimited() bool {
	if d.i == len(d.b) {
		return true
	}
	switch d.b[d.i] {
	case ' ', '\t', '\n', '\r', ',', '}':
		return true
	}
	return false
}

func (d *eventDecoder) int(dst *int64) bool {
	s, ok := d.integer()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	*dst = n
	return err == nil
}

func (d *eventDecoder) uint(dst *uint64, bits int) bool {
	s, ok := d.integer()
	if !ok || s[0] == '-' {
		return false
	}
	n, err := strconv.ParseUint(string(s), 10, bits)
	*dst = n
	return err == nil
}
