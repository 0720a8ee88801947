package events

import (
	"strings"
)

// keyRef is a parsed advanced-filter key: an envelope member of the
// subscription's schema, or a path into data.
type keyRef struct {
	envelope string   // canonical lower-case envelope key, "" for data paths
	path     []string // data member names, for data.x.y
}

// Envelope keys by schema, lower case (keys are matched without regard to
// case). Event Grid: the keys its documentation lists. CloudEvents: the
// context attributes of an event; other lower-case alphanumeric names
// (CloudEvents extension attributes, at most 20 characters) are accepted
// and are missing on every Tether event.
var (
	eventGridKeys  = []string{"id", "topic", "subject", "eventtype", "dataversion"}
	cloudEventKeys = []string{"id", "source", "subject", "type", "time", "specversion", "datacontenttype", "dataschema"}
)

// parseKey parses key for schema; msg says what is wrong with it.
func parseKey(schema Schema, key string) (k keyRef, msg string) {
	if key == "" {
		return k, "required"
	}
	head, rest, dotted := strings.Cut(key, ".")
	if strings.EqualFold(head, "data") {
		if !dotted {
			return k, `"data" alone is not a key: name a member, data.<name>[.<name>…]`
		}
		path := strings.Split(rest, ".")
		for _, p := range path {
			if p == "" {
				return k, "empty member name in data path " + quote(key)
			}
		}
		return keyRef{path: path}, ""
	}
	if dotted {
		return k, "only data members can be reached with dots: " + quote(key)
	}
	lower := strings.ToLower(key)
	switch schema {
	case CloudEventSchemaV1_0:
		for _, v := range cloudEventKeys {
			if lower == v {
				return keyRef{envelope: v}, ""
			}
		}
		if len(key) <= 20 && isLowerAlnum(key) {
			return keyRef{envelope: key}, "" // extension attribute (names are lower case)
		}
		return k, "not a CloudEvents key: use id, source, subject, type, time, specversion, datacontenttype, an extension attribute name (a-z, 0-9, at most 20) or data.<name>"
	default:
		for _, v := range eventGridKeys {
			if lower == v {
				return keyRef{envelope: v}, ""
			}
		}
		return k, "not an Event Grid key: use ID, Topic, Subject, EventType, DataVersion or data.<name>"
	}
}

func isLowerAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// envelopeValue is the value of an envelope key of e in schema; ok is
// false for keys the event does not have.
func envelopeValue(schema Schema, key string, e *Event) (string, bool) {
	switch key {
	case "id":
		return e.ID, true
	case "subject":
		return e.Subject, true
	}
	if schema == CloudEventSchemaV1_0 {
		switch key {
		case "source":
			return e.Topic, true
		case "type":
			return string(e.Type), true
		case "time":
			return FormatTime(e.Time), true
		case "specversion":
			return SpecVersion, true
		case "datacontenttype":
			return DataContentType, true
		}
		return "", false // dataschema, extension attributes
	}
	switch key {
	case "topic":
		return e.Topic, true
	case "eventtype":
		return string(e.Type), true
	case "dataversion":
		return e.DataVersion, true
	}
	return "", false
}

// member returns m[name], or failing an exact match the only member whose
// name equals name without regard to case.
func member(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	var found any
	n := 0
	for k, v := range m {
		if strings.EqualFold(k, name) {
			found = v
			n++
		}
	}
	return found, n == 1
}

func quote(s string) string { return `"` + s + `"` }
