package twin

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The renderers write JSON by hand: twin documents are small and rendered
// often (every twin GET, every desired push), and encoding/json would
// escape <, > and & and go through reflection for every value.

// encoder appends JSON to b. Object keys are written sorted; keys is one
// stack for the sorted key lists of the objects being written, so that a
// whole document needs no allocation per object.
type encoder struct {
	b    []byte
	keys []string
}

// pushKeys puts m's keys, sorted, on top of e.keys and returns where they
// are; the caller reads e.keys[i] (not a saved slice: deeper objects may
// grow the stack) and calls popKeys(start) when done.
func pushKeys[V any](e *encoder, m map[string]V) (start, end int) {
	start = len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys[start:])
	return start, len(e.keys)
}

func (e *encoder) popKeys(start int) {
	clear(e.keys[start:])
	e.keys = e.keys[:start]
}

// value appends v as JSON.
func (e *encoder) value(v any) {
	switch v := v.(type) {
	case nil:
		e.b = append(e.b, "null"...)
	case bool:
		e.b = strconv.AppendBool(e.b, v)
	case string:
		e.b = appendString(e.b, v)
	case json.Number:
		e.b = append(e.b, v...)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			e.b = append(e.b, "null"...)
			return
		}
		e.b = strconv.AppendFloat(e.b, v, 'g', -1, 64)
	case map[string]any:
		e.b = append(e.b, '{')
		e.members(v)
		if e.b[len(e.b)-1] == ',' {
			e.b = e.b[:len(e.b)-1]
		}
		e.b = append(e.b, '}')
	case []any:
		e.b = append(e.b, '[')
		for i, x := range v {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.value(x)
		}
		e.b = append(e.b, ']')
	default:
		// Values put into the exported maps by Go code rather than decoded.
		enc, err := json.Marshal(v)
		if err != nil {
			enc = []byte("null")
		}
		e.b = append(e.b, enc...)
	}
}

// members appends obj's members, each followed by a comma, so that the
// caller can add more (or drop the last comma).
func (e *encoder) members(obj map[string]any) {
	start, end := pushKeys(e, obj)
	for i := start; i < end; i++ {
		k := e.keys[i]
		e.b = append(appendString(e.b, k), ':')
		e.value(obj[k])
		e.b = append(e.b, ',')
	}
	e.popKeys(start)
}

// key appends ,"name": (name is plain ASCII).
func (e *encoder) key(name string) {
	e.b = append(e.b, `,"`...)
	e.b = append(e.b, name...)
	e.b = append(e.b, `":`...)
}

// str appends ,"name":"value".
func (e *encoder) str(name, value string) {
	e.key(name)
	e.b = appendString(e.b, value)
}

func (e *encoder) int(n int64) { e.b = strconv.AppendInt(e.b, n, 10) }

func (e *encoder) time(t time.Time) {
	e.b = append(appendTime(append(e.b, '"'), t), '"')
}

// appendValue appends v as JSON with sorted object keys.
func appendValue(b []byte, v any) []byte {
	e := encoder{b: b}
	e.value(v)
	return e.b
}

// appendString appends s as a JSON string: quote, backslash and control
// characters escaped, everything else (HTML characters too) as is. Invalid
// UTF-8, which decoded values never hold, becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b = append(b, '"')
	from := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[from:i]...)
		from = i + 1
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		}
	}
	b = append(b, s[from:]...)
	return append(b, '"')
}
