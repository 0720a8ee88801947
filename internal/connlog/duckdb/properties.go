//go:build cgo

package duckdb

import (
	"strings"

	"github.com/tether-hub/tether/internal/connlog"
)

// sharedKey is a properties_s key whose value a column also holds.
type sharedKey struct {
	key    string // JSON key in properties_s
	col    string // the column with the same value
	marker string // what stands for `"key":"value"` in props
	value  func(r *connlog.Record) string
	open   string // `"key":"`, what a pair starts with
}

// sharedKeys are the keys kql.AzureDiagnostics maps to columns (Extracted).
// Each marker starts with \x01, which valid JSON text cannot hold raw.
var sharedKeys = [...]sharedKey{
	{"deviceId", connlog.ColDeviceID, "\x01d", func(r *connlog.Record) string { return r.DeviceID }, ""},
	{"protocol", connlog.ColProtocol, "\x01p", func(r *connlog.Record) string { return r.Protocol }, ""},
	{"sdkVersion", connlog.ColSDKVersion, "\x01s", func(r *connlog.Record) string { return r.SDKVersion }, ""},
	{"sequenceNumber", connlog.ColSequenceNumber, "\x01q", func(r *connlog.Record) string { return r.SequenceNumber }, ""},
}

func init() {
	for i := range sharedKeys {
		sharedKeys[i].open = `"` + sharedKeys[i].key + `":"`
	}
}

// rawPrefix starts a stored props that is the text itself (one that held
// \x01 already); markers are \x01 and a letter, so no packed text starts
// with it.
const rawPrefix = "\x01\x01"

// plain reports whether JSON writes s as itself between quotes (printable
// ASCII without '"' and '\'), so `"` + s + `"` is its JSON text in any
// encoder and the view can rebuild it by concatenation.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// packProperties is what props stores for r: properties_s with every
// `"key":"value"` of a sharedKey whose value is the column's (plain, and
// found exactly once) replaced by its marker. Text that already holds
// \x01 (not valid JSON) is stored behind rawPrefix, untouched.
func packProperties(r *connlog.Record) string {
	p := r.Properties
	if strings.IndexByte(p, 0x01) >= 0 {
		return rawPrefix + p
	}
	var found [4]span
	spans, ok := packSpans(p, r, &found)
	switch {
	case !ok:
		return packSlow(p, r)
	case len(spans) == 0:
		return p
	}
	return string(appendSpans(make([]byte, 0, len(p)), p, spans))
}

// appendPacked appends what packProperties returns for r to dst: the
// Arrow loader writes it straight into its column, no string a record.
func appendPacked(dst []byte, r *connlog.Record) []byte {
	p := r.Properties
	if strings.IndexByte(p, 0x01) >= 0 {
		return append(append(dst, rawPrefix...), p...)
	}
	var found [4]span
	spans, ok := packSpans(p, r, &found)
	if !ok {
		return append(dst, packSlow(p, r)...)
	}
	return appendSpans(dst, p, spans)
}

// span is where a shared key's pair is in properties_s, and its marker.
type span struct {
	at, end int
	marker  string
}

// packSpans finds the pairs packProperties replaces in the usual text:
// every pair found at most once, none overlapping another; they are
// returned in found's array, in order. It gives up (ok false) otherwise,
// and packSlow, which replaces one key after the other, decides.
//
// One pass over p's quotes checks every key at each (four searches of
// the whole text a key, to find a pair and to make sure it is the only
// one, were the move's largest cost after DuckDB's): a key's first pair
// is the first quote where it matches; a second one counts from the end
// of the first on, as a search from there would find it.
func packSpans(p string, r *connlog.Record, found *[4]span) ([]span, bool) {
	var vals [len(sharedKeys)]string
	var first [len(sharedKeys)]int
	live := false
	for i := range sharedKeys {
		first[i] = -1
		if v := sharedKeys[i].value(r); plain(v) {
			vals[i], first[i] = v, -2 // -2: wanted, not found yet
			live = true
		}
	}
	if !live {
		return found[:0], true
	}
	for q := strings.IndexByte(p, '"'); q >= 0; {
		rest := p[q:]
		for i := range sharedKeys {
			k := &sharedKeys[i]
			if first[i] == -1 || len(rest) <= len(k.open)+len(vals[i]) || rest[1] != k.key[0] {
				continue
			}
			v := vals[i]
			if rest[:len(k.open)] != k.open || rest[len(k.open):len(k.open)+len(v)] != v || rest[len(k.open)+len(v)] != '"' {
				continue
			}
			if first[i] == -2 {
				first[i] = q
			} else if q >= first[i]+len(k.open)+len(v)+1 {
				return nil, false
			}
		}
		next := strings.IndexByte(p[q+1:], '"')
		if next < 0 {
			break
		}
		q += 1 + next
	}
	n := 0
	for i := range sharedKeys {
		if first[i] >= 0 {
			found[n] = span{first[i], first[i] + len(sharedKeys[i].open) + len(vals[i]) + 1, sharedKeys[i].marker}
			n++
		}
	}
	spans := found[:n]
	// Few spans: insertion sort by position, then check for overlaps.
	for i := 1; i < n; i++ {
		for j := i; j > 0 && spans[j].at < spans[j-1].at; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	for i := 1; i < n; i++ {
		if spans[i].at < spans[i-1].end {
			return nil, false
		}
	}
	return spans, true
}

// appendSpans appends p with spans replaced by their markers to dst.
func appendSpans(dst []byte, p string, spans []span) []byte {
	last := 0
	for _, sp := range spans {
		dst = append(dst, p[last:sp.at]...)
		dst = append(dst, sp.marker...)
		last = sp.end
	}
	return append(dst, p[last:]...)
}

// pairAt is the index of the first `"key":"value"` (open is `"key":"`) in
// p at or after from, or -1.
func pairAt(p, open, v string, from int) int {
	for from <= len(p) {
		i := strings.Index(p[from:], open)
		if i < 0 {
			return -1
		}
		at := from + i
		rest := p[at+len(open):]
		if len(rest) > len(v) && rest[:len(v)] == v && rest[len(v)] == '"' {
			return at
		}
		from = at + 1
	}
	return -1
}

// packSlow replaces the shared keys' pairs one key after the other.
func packSlow(p string, r *connlog.Record) string {
	for _, k := range sharedKeys {
		v := k.value(r)
		if !plain(v) {
			continue
		}
		pair := `"` + k.key + `":"` + v + `"`
		if i := strings.Index(p, pair); i >= 0 && !strings.Contains(p[i+len(pair):], pair) {
			p = p[:i] + k.marker + p[i+len(pair):]
		}
	}
	return p
}

// unpackProperties is properties_s rebuilt from props and r's columns.
func unpackProperties(props string, r *connlog.Record) string {
	if raw, ok := strings.CutPrefix(props, rawPrefix); ok {
		return raw
	}
	if strings.IndexByte(props, 0x01) < 0 {
		return props
	}
	for _, k := range sharedKeys {
		props = strings.Replace(props, k.marker, `"`+k.key+`":"`+k.value(r)+`"`, 1)
	}
	return props
}

// propertiesSQL is the SQL expression that rebuilds properties_s from the
// props column src, as unpackProperties does.
func propertiesSQL(src string) string {
	s := src
	for _, k := range sharedKeys {
		s = "replace(" + s + ", chr(1) || '" + k.marker[1:] + "', '\"" + k.key + "\":\"' || " + quote(k.col) + " || '\"')"
	}
	return "CASE WHEN NOT contains(" + src + ", chr(1)) THEN " + src +
		" WHEN starts_with(" + src + ", chr(1) || chr(1)) THEN substr(" + src + ", 3) ELSE " + s + " END"
}
