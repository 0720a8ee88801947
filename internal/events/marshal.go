package events

import "encoding/json"

// mustMarshal encodes the data objects of this package. They hold only
// strings, numbers, booleans, string maps and json.RawMessage values that
// were checked with json.Valid, which encoding/json cannot fail on; a
// failure is a programming error.
func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("events: encoding event data: " + err.Error())
	}
	return b
}
