package devquery

import "encoding/json"

// MapDoc is a Doc over a decoded JSON object (json.Decoder.UseNumber keeps
// numbers exact) or one built by hand.
type MapDoc map[string]any

// Lookup walks path through nested objects.
func (m MapDoc) Lookup(path []string) (any, bool) {
	var cur any = map[string]any(m)
	for _, name := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[name]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// MarshalJSON renders the object.
func (m MapDoc) MarshalJSON() ([]byte, error) { return json.Marshal(map[string]any(m)) }
