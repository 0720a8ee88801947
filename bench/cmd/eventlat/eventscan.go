package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// hookEvent is what the comparator needs of one delivered Event Grid event.
// The byte slices point into the POST's body (or, for a string with
// escapes, a decoded copy): valid until the receiver reads the next body.
type hookEvent struct {
	eventType      []byte
	eventTime      time.Time
	deviceID       []byte
	seq            []byte // data.deviceConnectionStateEventInfo.sequenceNumber
	reason         []byte // data.tether.reason
	validationCode []byte // data.validationCode (the handshake's)
}

// scanBatch parses an Event Grid batch — a JSON array of event objects —
// into dst[:0] and returns it. It validates the whole body as JSON (what
// encoding/json would refuse, it refuses) but keeps only the fields above:
// decoding every event into a struct with encoding/json was the largest
// cost of eventlat's receiver besides the socket (issue 21: the driver's
// own CPU is part of the machine the hub's p99 is measured on).
func scanBatch(b []byte, dst []hookEvent) ([]hookEvent, error) {
	s := scanner{b: b}
	dst = dst[:0]
	s.ws()
	if !s.eat('[') {
		return dst, s.fail("a batch is a JSON array of events")
	}
	err := s.list(']', func() error {
		var e hookEvent
		if err := s.event(&e); err != nil {
			return err
		}
		dst = append(dst, e)
		return nil
	})
	if err != nil {
		return dst, err
	}
	s.ws()
	if s.i != len(s.b) {
		return dst, s.fail("data after the batch")
	}
	return dst, nil
}

// scanner walks a JSON text; i is the next byte to read.
type scanner struct {
	b     []byte
	i     int
	depth int
}

// maxDepth bounds nesting of skipped values (encoding/json's own bound).
const maxDepth = 10000

var errSyntax = errors.New("invalid JSON")

func (s *scanner) fail(what string) error {
	return fmt.Errorf("%w at byte %d: %s", errSyntax, s.i, what)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object walks one object, calling field for each member with the
// scanner at the member's value (whitespace skipped); field must consume
// the value.
func (s *scanner) object(field func(key []byte) error) error {
	if !s.eat('{') {
		return s.fail("want an object")
	}
	return s.list('}', func() error {
		key, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if !s.eat(':') {
			return s.fail("want : after a key")
		}
		s.ws()
		return field(key)
	})
}

// list reads the elements of an array or the members of an object (the
// opening bracket already read) up to end: elem reads one, with the
// scanner at its first byte.
func (s *scanner) list(end byte, elem func() error) error {
	s.ws()
	if s.eat(end) {
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		s.ws()
		if s.eat(end) {
			return nil
		}
		if !s.eat(',') {
			return s.fail("want , or " + string(end))
		}
		s.ws()
	}
}

func (s *scanner) event(e *hookEvent) error {
	return s.object(func(k []byte) error {
		switch string(k) {
		case "eventType":
			return s.strField(&e.eventType)
		case "eventTime":
			var t []byte
			if err := s.strField(&t); err != nil {
				return err
			}
			if t == nil {
				return nil // null: unchanged, as for encoding/json
			}
			if err := e.eventTime.UnmarshalText(t); err != nil {
				return fmt.Errorf("eventTime: %w", err)
			}
			return nil
		case "data":
			return s.nullOr(func() error { return s.data(e) })
		}
		return s.skip()
	})
}

func (s *scanner) data(e *hookEvent) error {
	return s.object(func(k []byte) error {
		switch string(k) {
		case "deviceId":
			return s.strField(&e.deviceID)
		case "validationCode":
			return s.strField(&e.validationCode)
		case "deviceConnectionStateEventInfo":
			return s.memberOf("sequenceNumber", &e.seq)
		case "tether":
			return s.memberOf("reason", &e.reason)
		}
		return s.skip()
	})
}

// memberOf reads an object (or null) and keeps only its string member
// name, in *dst.
func (s *scanner) memberOf(name string, dst *[]byte) error {
	return s.nullOr(func() error {
		return s.object(func(k []byte) error {
			if string(k) == name {
				return s.strField(dst)
			}
			return s.skip()
		})
	})
}

// nullOr consumes a null (leaving the target as it was, as encoding/json
// does) or runs f.
func (s *scanner) nullOr(f func() error) error {
	if s.lit("null") {
		return nil
	}
	return f()
}

// strField reads a string member into *dst (null leaves it unchanged; any
// other type is an error, as it is for encoding/json into a string).
func (s *scanner) strField(dst *[]byte) error {
	if s.lit("null") {
		return nil
	}
	v, err := s.str()
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

func (s *scanner) lit(l string) bool {
	if len(s.b)-s.i >= len(l) && string(s.b[s.i:s.i+len(l)]) == l {
		s.i += len(l)
		return true
	}
	return false
}

// str reads a string and returns its contents: a sub-slice of the body
// when it has no escapes, else a decoded copy.
func (s *scanner) str() ([]byte, error) {
	if !s.eat('"') {
		return nil, s.fail("want a string")
	}
	start := s.i
	escaped := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if escaped {
				var out string
				if err := json.Unmarshal(s.b[start-1:s.i], &out); err != nil {
					return nil, fmt.Errorf("%w: %v", errSyntax, err)
				}
				return []byte(out), nil
			}
			return v[:len(v):len(v)], nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, s.fail("unterminated escape")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHex4(s.b[s.i+2:s.i+6]) {
					return nil, s.fail("bad \\u escape")
				}
				s.i += 6
			default:
				return nil, s.fail("bad escape")
			}
		case c < 0x20:
			return nil, s.fail("control character in a string")
		default:
			s.i++
		}
	}
	return nil, s.fail("unterminated string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// skip consumes any one JSON value, checking its syntax.
func (s *scanner) skip() error {
	if s.i >= len(s.b) {
		return s.fail("want a value")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{' || c == '[':
		if s.depth++; s.depth > maxDepth {
			return s.fail("nested too deep")
		}
		defer func() { s.depth-- }()
		if c == '{' {
			return s.object(func([]byte) error { return s.skip() })
		}
		s.i++
		return s.list(']', s.skip)
	case c == 't':
		return s.want("true")
	case c == 'f':
		return s.want("false")
	case c == 'n':
		return s.want("null")
	default:
		return s.number()
	}
}

func (s *scanner) want(l string) error {
	if !s.lit(l) {
		return s.fail("bad literal")
	}
	return nil
}

// number consumes a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return s.fail("want a value")
	}
	if s.eat('.') && s.digits() == 0 {
		return s.fail("want digits after .")
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if s.digits() == 0 {
			return s.fail("want digits in an exponent")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}
