package twin

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// IoT Hub's limits for tags and properties (iot-hub-devguide-device-twins,
// "Tags and properties format" and "Device twin size"; the same numbers are
// in Azure/iotedge's ReportedPropertiesValidator, "taken from IoTHub").
const (
	MaxKeyBytes        = 1024      // a key, UTF-8 bytes
	MaxStringBytes     = 4096      // a string value, UTF-8 bytes
	MaxDepth           = 10        // objects and arrays nested below the section root
	MaxTagsBytes       = 8 * 1024  // tags, measured by Size
	MaxPropertiesBytes = 32 * 1024 // desired, and reported, each measured by Size
	MinInteger         = -4503599627370496
	MaxInteger         = 4503599627370495 // 2^52-1
)

// pathSeg is one step of a key path: a key, or an array index when key is
// unset and index >= 0.
type pathSeg struct {
	key   string
	index int
}

// keyPath is where a value sits, for error messages only: the section
// ("tags", "properties.reported") and the steps below it. Built without
// allocating on the happy path; formatted only when something is wrong.
type keyPath struct {
	section string
	segs    []pathSeg
}

func (p *keyPath) push(s pathSeg) { p.segs = append(p.segs, s) }
func (p *keyPath) pop()           { p.segs = p.segs[:len(p.segs)-1] }

// String renders the path as the query language spells it
// (tags.location.building, properties.reported.list[2]); a key that could
// not be spelled so (an invalid one) is shown quoted: tags["a.b"]. Very long
// keys are cut to 64 bytes.
func (p *keyPath) String() string {
	var b strings.Builder
	b.WriteString(p.section)
	for _, s := range p.segs {
		switch {
		case s.index >= 0:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case plainKey(s.key):
			b.WriteString("." + s.key)
		default:
			k := s.key
			if len(k) > 64 {
				k = strings.ToValidUTF8(k[:64], "") + "…"
			}
			b.WriteString("[" + strconv.Quote(k) + "]")
		}
	}
	return b.String()
}

func plainKey(k string) bool { return k != "" && len(k) <= 64 && badKeyRune(k) < 0 }

// badKeyRune is the first character IoT Hub does not allow in a key —
// Unicode control characters (C0, DEL, C1), '.', '$' and space — or -1.
// A '$' anywhere also covers "cannot start with '$'", which reserves
// $metadata and $version.
func badKeyRune(k string) rune {
	for _, r := range k {
		if r == '.' || r == '$' || r == ' ' || unicode.IsControl(r) {
			return r
		}
	}
	return -1
}

// validator checks a decoded patch or document against the key and value
// rules. Nulls are allowed as object members when the input is a patch or a
// replacement (they delete, or are left out), never inside arrays: IoT Hub
// answers 400004 "Value of Property or Tag cannot be null" for {"a":[{"b":null}]}
// (azure-iot-sdk-csharp#1741, by design).
type validator struct {
	path keyPath
}

func validate(section string, obj map[string]any) error {
	v := validator{path: keyPath{section: section, segs: make([]pathSeg, 0, MaxDepth+1)}}
	return v.object(obj, 0, false)
}

// object checks obj, whose depth (containers from the section root down to
// and including obj) is depth. inArray: obj is inside an array, where null
// members are not allowed either.
func (v *validator) object(obj map[string]any, depth int, inArray bool) error {
	for k, val := range obj {
		v.path.push(pathSeg{key: k, index: -1})
		if err := v.key(k); err != nil {
			return err
		}
		if val == nil && inArray {
			return invalid("%s: null inside an array; values in arrays (and members of objects in arrays) may not be null, write the whole array again instead", &v.path)
		}
		if err := v.value(val, depth, inArray); err != nil {
			return err
		}
		v.path.pop()
	}
	return nil
}

func (v *validator) key(k string) error {
	switch {
	case k == "":
		return invalid("%s: empty key; twin keys need at least one character", &v.path)
	case len(k) > MaxKeyBytes:
		return invalid("%s: key is %d bytes; twin keys may be at most %d bytes (UTF-8)", &v.path, len(k), MaxKeyBytes)
	}
	if r := badKeyRune(k); r >= 0 {
		return invalid("%s: key contains %q; twin keys may not contain '.', '$', space or control characters", &v.path, r)
	}
	return nil
}

// value checks one member value; depth is that of the object holding it.
func (v *validator) value(val any, depth int, inArray bool) error {
	switch val := val.(type) {
	case nil, bool:
		return nil
	case string:
		if len(val) > MaxStringBytes {
			return invalid("%s: string value is %d bytes; string values may be at most %d bytes (UTF-8)", &v.path, len(val), MaxStringBytes)
		}
		return nil
	case json.Number:
		return v.number(val)
	case map[string]any:
		if depth+1 > MaxDepth {
			return invalid("%s: an object at nesting depth %d; twin documents may nest objects and arrays at most %d deep", &v.path, depth+1, MaxDepth)
		}
		return v.object(val, depth+1, inArray)
	case []any:
		if depth+1 > MaxDepth {
			return invalid("%s: an array at nesting depth %d; twin documents may nest objects and arrays at most %d deep", &v.path, depth+1, MaxDepth)
		}
		for i, e := range val {
			v.path.push(pathSeg{index: i})
			if e == nil {
				return invalid("%s: null inside an array; arrays may not contain null, write the whole array again without it", &v.path)
			}
			if err := v.value(e, depth+1, true); err != nil {
				return err
			}
			v.path.pop()
		}
		return nil
	}
	return invalid("%s: unsupported value of type %T", &v.path, val)
}

// number checks a JSON number: integers within ±2^52 as IoT Hub documents
// them, other numbers finite as a float64.
func (v *validator) number(n json.Number) error {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || i < MinInteger || i > MaxInteger {
			return invalid("%s: integer %s is out of range; twin integers must be between %d and %d", &v.path, s, int64(MinInteger), int64(MaxInteger))
		}
		return nil
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return invalid("%s: number %s is not representable as a 64-bit floating-point value", &v.path, s)
	}
	return nil
}

// Size measures a section (tags, desired or reported values, without
// $metadata and $version) the way IoT Hub documents it: for every member the
// bytes of its key plus the size of its value, where a string counts its
// UTF-8 bytes less any control characters, a number 8, a boolean 4, and an
// object or array the sum of what it holds.
func Size(values map[string]any) int {
	n := 0
	for k, v := range values {
		n += textSize(k) + valueSize(v)
	}
	return n
}

func valueSize(v any) int {
	switch v := v.(type) {
	case string:
		return textSize(v)
	case bool:
		return 4
	case map[string]any:
		return Size(v)
	case []any:
		n := 0
		for _, e := range v {
			n += valueSize(e)
		}
		return n
	case nil:
		return 0
	}
	return 8 // numbers
}

func textSize(s string) int {
	n := len(s)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				n--
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if unicode.IsControl(r) {
			n -= w
		}
		i += w
	}
	return n
}

// checkSize rejects a write that would leave a section over its limit. Like
// IoT Hub ("rejects … all operations that would increase the size … above
// the limit") a write that shrinks a section already over it is let through.
func checkSize(section string, before, after map[string]any, limit int) error {
	n := Size(after)
	if n <= limit {
		return nil
	}
	if old := Size(before); n <= old {
		return nil
	}
	return invalid("%s would be %d bytes, over its limit of %d bytes (counted as IoT Hub does: key and string bytes, 8 per number, 4 per boolean; $metadata and $version not counted)", section, n, limit)
}
