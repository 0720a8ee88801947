package journal

import (
	"encoding/json"
	"strconv"
	"time"
	"unsafe"

	"github.com/tether-hub/tether/internal/presence"
)

// parseConnectionEvent decodes the JSON of a presence.ConnectionEvent with
// exactly the result of json.Unmarshal, which it falls back to for
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
//
// With shared, the event's strings are slices of data itself rather than
// of a copy: data must never change afterwards.
func parseConnectionEvent(data []byte, shared bool) (presence.ConnectionEvent, error) {
	var e presence.ConnectionEvent
	var d eventDecoder
	if shared {
		d = sharedEventDecoder(data)
	} else {
		d = newEventDecoder(data)
	}
	if d.event(&e) {
		return e, nil
	}
	e = presence.ConnectionEvent{}
	err := json.Unmarshal(data, &e)
	return e, err
}

// summaryJSON is what json.Unmarshal fills for a ConnectionSummary: the
// slow path of parseSummary, and its definition.
type summaryJSON struct {
	Kind         presence.Kind        `json:"kind"`
	Time         time.Time            `json:"time"`
	Reason       presence.Reason      `json:"reason"`
	Result       presence.Result      `json:"result"`
	Protocol     string               `json:"protocol"`
	AuthFailure  presence.AuthFailure `json:"authFailure"`
	Detail       string               `json:"detail"`
	Count        int                  `json:"count"`
	TokenRenewal bool                 `json:"tokenRenewal"`
}

// parseSummary decodes the summary fields of a connection event's JSON
// with exactly the result of json.Unmarshal into a summaryJSON, which it
// falls back to. Its fast path is the event's, except that other known
// keys are only scanned (any string, integer or boolean) and that the
// values are not copied: kinds, reasons, results and protocols are
// constants, and detail is only read here. FuzzDecodeConnectionEvent
// compares it with json.Unmarshal too.
func parseSummary(data []byte) (summaryJSON, error) {
	var sum summaryJSON
	d := eventDecoder{b: data}
	if detail, ok := d.summary(&sum); ok {
		if needsAuthFailure(sum.Kind, sum.Reason, sum.AuthFailure) {
			sum.AuthFailure = legacyAuthFailure(detail)
		}
		return sum, nil
	}
	return unmarshalSummary(data)
}

// unmarshalSummary is parseSummary's slow path; apart, so that only it
// puts a summary on the heap.
func unmarshalSummary(data []byte) (summaryJSON, error) {
	sum := new(summaryJSON)
	if err := json.Unmarshal(data, sum); err != nil {
		return summaryJSON{}, err
	}
	if needsAuthFailure(sum.Kind, sum.Reason, sum.AuthFailure) {
		sum.AuthFailure = legacyAuthFailure([]byte(sum.Detail))
	}
	return *sum, nil
}

func newEventDecoder(data []byte) eventDecoder {
	return eventDecoder{b: data, s: string(data)}
}

// sharedEventDecoder decodes into strings that are slices of data itself.
func sharedEventDecoder(data []byte) eventDecoder {
	if len(data) == 0 {
		return eventDecoder{b: data}
	}
	return eventDecoder{b: data, s: unsafe.String(&data[0], len(data))}
}

// eventDecoder is the fast path; every method reports false to give up.
// s holds b's bytes when a whole event is decoded: the event's strings
// are slices of it (one allocation for all of them).
type eventDecoder struct {
	b []byte
	s string
	i int
}

// eventKeys are the keys the fast path knows, for TestDecodeKnowsEveryField.
var eventKeys = []string{
	"id", "kind", "time", "hub", "deviceId", "moduleId", "sequenceNumber", "reason", "result",
	"authFailure", "detail", "protocol", "protocolVersion", "maskedIpAddress", "sdkVersion", "authType",
	"sessionId", "connectedAt", "durationMs", "idleMs", "tokenExpiry", "cleanSession", "keepAlive",
	"tokenRenewal", "renewalOf", "count",
}

// knownKeys holds eventKeys: a key the summary skips must be one, since
// json.Unmarshal would match another, differently cased, to a field.
var knownKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range eventKeys {
		m[k] = true
	}
	return m
}()

func (d *eventDecoder) event(e *presence.ConnectionEvent) bool {
	return d.object(func(key []byte) (ok bool) {
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
			ok = d.result(&e.Result, false)
		case "authFailure":
			ok = d.str(&s)
			e.AuthFailure = presence.AuthFailure(s)
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
		case "idleMs":
			ok = d.int(&e.IdleMs)
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
		case "count":
			var n int64
			ok = d.int(&n)
			e.Count = int(n)
		default:
			return false // json.Unmarshal decides
		}
		return ok
	}) && d.end()
}

// summary is the fast path of parseSummary; detail is the event's detail
// (a slice of b).
func (d *eventDecoder) summary(sum *summaryJSON) (detail []byte, ok bool) {
	ok = d.object(func(key []byte) (ok bool) {
		var s string
		switch string(key) {
		case "kind":
			ok = d.constant(&s)
			sum.Kind = presence.Kind(s)
		case "time":
			ok = d.time(&sum.Time)
		case "reason":
			ok = d.constant(&s)
			sum.Reason = presence.Reason(s)
		case "result":
			ok = d.result(&sum.Result, true)
		case "protocol":
			ok = d.constant(&sum.Protocol)
		case "authFailure":
			ok = d.constant(&s)
			sum.AuthFailure = presence.AuthFailure(s)
		case "detail":
			detail, ok = d.rawString()
		case "count":
			var n int64
			ok = d.int(&n)
			sum.Count = int(n)
		case "tokenRenewal":
			ok = d.bool(&sum.TokenRenewal)
		default:
			ok = knownKeys[string(key)] && d.skip()
		}
		return ok
	}) && d.end()
	return detail, ok
}

// object reads a JSON object, calling member for each key with the
// decoder at its value; member reads the value, or reports false to give
// up (as for a key it does not know).
func (d *eventDecoder) object(member func(key []byte) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	for {
		key, ok := d.rawString()
		if !ok || !d.next(':') || !member(key) {
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

// text reads a string with constant or str.
func (d *eventDecoder) text(dst *string, constant bool) bool {
	if constant {
		return d.constant(dst)
	}
	return d.str(dst)
}

// skip reads a string, an integer or a boolean and drops it.
func (d *eventDecoder) skip() bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '"' {
		_, ok := d.rawString()
		return ok
	}
	var b bool
	if d.bool(&b) {
		return true
	}
	_, ok := d.integer()
	return ok
}

// constant reads a string; the values of the summary's fields are
// constants of presence, which it returns without allocating.
func (d *eventDecoder) constant(dst *string) bool {
	b, ok := d.rawString()
	if !ok {
		return false
	}
	if c, known := constants[string(b)]; known {
		*dst = c
	} else {
		*dst = string(b)
	}
	return true
}

// constants are the strings constant returns without allocating.
var constants = func() map[string]string {
	m := map[string]string{"MQTT": "MQTT", "MQTT-WS": "MQTT-WS"}
	add := func(s ...string) {
		for _, v := range s {
			m[v] = v
		}
	}
	add(string(presence.Connected), string(presence.Disconnected), string(presence.Refused))
	add(string(presence.ReasonClient), string(presence.ReasonNetwork), string(presence.ReasonKeepAlive),
		string(presence.ReasonTakeover), string(presence.ReasonTokenExpired), string(presence.ReasonDisabled),
		string(presence.ReasonDeleted), string(presence.ReasonServerShutdown), string(presence.ReasonHubRestart), string(presence.ReasonNodeLost),
		string(presence.ReasonProtocolError), string(presence.ReasonAuthFailed), string(presence.ReasonConnectTimeout),
		string(presence.ReasonServerError), string(presence.ReasonThrottledHub), string(presence.ReasonThrottledAddress),
		string(presence.ReasonThrottledDevice), string(presence.ReasonThrottledHandshake), string(presence.ReasonThrottledMessages),
		string(presence.ReasonThrottledHubMsgs), string(presence.ReasonQuotaExceeded))
	for _, r := range []presence.Result{presence.ResultTakeover, presence.ResultClosedRemotely, presence.ResultUnauthorized,
		presence.ResultBadRequest, presence.ResultServerError, presence.ResultTimeout, presence.ResultLinkCreationConflict,
		presence.ResultThrottled, presence.ResultDeviceThrottled, presence.ResultQuotaExceeded} {
		add(r.Type, r.Description)
	}
	for _, f := range legacyAuthFailures {
		add(string(f.cause))
	}
	add(string(presence.AuthOther), string(presence.AuthNoCertificate), string(presence.AuthCertificateExpired),
		string(presence.AuthThumbprintMismatch), string(presence.AuthUnknownCA), string(presence.AuthUnverifiedCA),
		string(presence.AuthCNMismatch), string(presence.AuthSASDeviceCertificate), string(presence.AuthX509DeviceToken))
	return m
}()

// result reads the result object; with constant, its strings as
// constant does, else as str.
func (d *eventDecoder) result(r *presence.Result, constant bool) bool {
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "Type":
			return d.text(&r.Type, constant)
		case "Description":
			return d.text(&r.Description, constant)
		}
		return false
	})
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
