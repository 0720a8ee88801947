package devquery

import "encoding/json"

// MapDoc is a Doc over a decoded JSON object (json.Decoder.UseNumber keeps
// numbers exact) or one built by hand.
type MapDoc map[string]any

// Lookup walks path through nested objects.
func (m MapDoc) Lookup(path []string) (any, bool) {
	obj := map[string]any(m)
	for i, name := range path {
		v, ok := obj[name]
		if !ok || i == len(path)-1 {
			return v, ok
		}
		if obj, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return obj, true
}

// MarshalJSON renders the object.
func (m MapDoc) MarshalJSON() ([]byte, error) { return json.Marshal(map[string]any(m)) }
