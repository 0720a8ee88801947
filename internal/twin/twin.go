package twin

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
)

// Twin is one device's twin document: tags, desired and reported
// properties with their $version and $metadata, and the counters behind the
// twin's "version" and "etag". The device fields a served twin shows come
// from the registry and presence (DeviceInfo), not from here.
//
// Values are JSON as encoding/json decodes it with UseNumber: nil (only in
// patches), bool, json.Number, string, map[string]any, []any.
//
// Mutators (Patch*, Service*) need the caller's lock. They never change a
// map or Meta in place — a write builds new ones along the path it writes
// and shares the rest — so anything a reader obtained from the twin (a
// Values map, a Lookup result) stays as it was, and readers may run
// concurrently with each other as long as nobody mutates the Twin itself.
type Twin struct {
	// Tags are service-only; IoT Hub keeps no metadata for them.
	Tags     map[string]any
	Desired  Properties
	Reported Properties
	// Version is the twin's "version": 2 for a new twin (IoT Hub's
	// DeviceCreated sample shows version 2 with both sections at $version 1)
	// and +1 for every change of tags, desired or reported, so that it is
	// desired $version + reported $version + tag-only changes, as real twins
	// show (version 26 with $version 4 and 22; 36 with 4 and 32).
	Version int64
	// ETagVersion is what the twin's etag encodes: 1 for a new twin, +1 for
	// every service write (tags or desired). Reported changes do not move it:
	// real twins show etag "AAAAAAAAAAQ=" (4) with desired $version 4 and
	// reported at 22 or 32. So a service's If-Match fails only when another
	// service write came between, not when the device reported something.
	ETagVersion int64
}

// Properties is the desired or the reported section.
type Properties struct {
	Values  map[string]any
	Version int64 // $version: 1 for a new twin, +1 per accepted write
	Meta    *Meta // $metadata of the section root; its Children follow Values
}

// New returns the twin IoT Hub creates with a device: no tags, empty
// desired and reported at $version 1 stamped now, version 2, etag 1.
func New(now time.Time) *Twin {
	now = stamp(now)
	return &Twin{
		Tags:        map[string]any{},
		Desired:     Properties{Values: map[string]any{}, Version: 1, Meta: newMeta(now, 0, true)},
		Reported:    Properties{Values: map[string]any{}, Version: 1, Meta: newMeta(now, 0, true)},
		Version:     2,
		ETagVersion: 1,
	}
}

// ETag is the twin's etag as the twin JSON shows it (unquoted): base64 of
// ETagVersion as 8 big-endian bytes, "AAAAAAAAAAE=" for a new twin. The HTTP
// ETag header quotes it.
func (t *Twin) ETag() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.ETagVersion))
	return base64.StdEncoding.EncodeToString(b[:])
}

// MatchETag reports whether an If-Match header value allows a write: empty
// (no header), "*", or a list of etags one of which is the twin's, each
// quoted or not, weak (W/) or not. azure-iothub always sends one, quoted,
// "*" for a twin it did not read first (Twin's default etag).
func (t *Twin) MatchETag(ifMatch string) bool {
	ifMatch = strings.TrimSpace(ifMatch)
	if ifMatch == "" {
		return true
	}
	current := t.ETag()
	for tag := range strings.SplitSeq(ifMatch, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' {
			tag = tag[1 : len(tag)-1]
		}
		if tag == "*" || tag == current {
			return true
		}
	}
	return false
}

// Clone returns a deep copy that shares nothing with t.
func (t *Twin) Clone() *Twin {
	return &Twin{
		Tags:        cloneObject(t.Tags),
		Desired:     t.Desired.clone(),
		Reported:    t.Reported.clone(),
		Version:     t.Version,
		ETagVersion: t.ETagVersion,
	}
}

func (p Properties) clone() Properties {
	return Properties{Values: cloneObject(p.Values), Version: p.Version, Meta: p.Meta.clone()}
}

func cloneObject(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneObject(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}
