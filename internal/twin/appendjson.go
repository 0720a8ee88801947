package twin

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The renderers write JSON by hand: twin documents are small and rendered
// often (every twin GET, every desired push), and encoding/json would
// escape <, > and & and go through reflection for every value.

// appendValue appends v as JSON; object keys sorted.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case string:
		return appendString(b, v)
	case json.Number:
		return append(b, v...)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case map[string]any:
		b = appendMembers(append(b, '{'), v)
		if b[len(b)-1] == ',' {
			b = b[:len(b)-1]
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, e)
		}
		return append(b, ']')
	}
	// Values put into the exported maps by Go code rather than decoded.
	enc, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, enc...)
}

// appendMembers appends obj's members, each followed by a comma, so that
// the caller can add more (or drop the last comma).
func appendMembers(b []byte, obj map[string]any) []byte {
	for _, k := range sortedKeys(obj) {
		b = appendString(b, k)
		b = appendValue(append(b, ':'), obj[k])
		b = append(b, ',')
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
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
