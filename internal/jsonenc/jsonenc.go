// Package jsonenc appends JSON values byte for byte as encoding/json
// writes them, without reflection, for the hand-written encoders on the
// connection-event path (journal, event delivery: issue 21). Its tests
// hold it to encoding/json, fuzzing included.
package jsonenc

import (
	"encoding/json"
	"fmt"
	"time"
)

// String appends s quoted as encoding/json does. Printable ASCII without
// the characters json escapes (ids, names, fixed words: nearly every
// string on the hot path) goes straight through; anything else takes
// encoding/json itself (HTML-safe escapes, U+2028/2029, invalid UTF-8),
// so the rules live in one place.
func String(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Time is time.Time.MarshalJSON appended: RFC 3339 with nanoseconds,
// refused outside years 0–9999 or with a zone offset of a day or more,
// as encoding/json refuses them.
func Time(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("jsonenc: time %v: year outside of range [0,9999]", t)
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return nil, fmt.Errorf("jsonenc: time %v: timezone hour outside of range [0,23]", t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// IsCompact reports whether raw JSON (valid, as encoding/json produced it)
// can be appended as it is where encoding/json would compact and
// HTML-escape a json.RawMessage: no whitespace outside strings and
// nothing json escapes for HTML (<, >, &, U+2028, U+2029). It is
// conservative: a control or non-ASCII byte anywhere says no, and the
// caller falls back to encoding/json.
func IsCompact(raw []byte) bool {
	in := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c < ' ' || c > 0x7e || c == '<' || c == '>' || c == '&':
			return false
		case in && c == '\\':
			i++ // the escaped byte cannot end the string
		case c == '"':
			in = !in
		case !in && c == ' ':
			return false
		}
	}
	return len(raw) > 0 && !in
}
