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
}

// sharedKeys are the keys kql.AzureDiagnostics maps to columns (Extracted).
// Each marker starts with \x01, which valid JSON text cannot hold raw.
var sharedKeys = []sharedKey{
	{"deviceId", connlog.ColDeviceID, "\x01d", func(r *connlog.Record) string { return r.DeviceID }},
	{"protocol", connlog.ColProtocol, "\x01p", func(r *connlog.Record) string { return r.Protocol }},
	{"sdkVersion", connlog.ColSDKVersion, "\x01s", func(r *connlog.Record) string { return r.SDKVersion }},
	{"sequenceNumber", connlog.ColSequenceNumber, "\x01q", func(r *connlog.Record) string { return r.SequenceNumber }},
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
