package events

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeSubscription feeds arbitrary JSON to the decoder, validator and
// matcher: none may panic, a valid result must stay valid through a JSON
// round trip, and Match must give the same answer for the round-tripped
// subscription.
func FuzzDecodeSubscription(f *testing.F) {
	f.Add([]byte(exampleSubscription))
	f.Add([]byte(`{"name":"abc","destination":{"properties":{"endpointUrl":"https://x.example"}},"filter":{"enableAdvancedFilteringOnArrays":true,"advancedFilters":[{"operatorType":"NumberNotInRange","key":"data.nums","values":[[1,2],[3,4]]},{"operatorType":"IsNullOrUndefined","key":"data.x"}]}}`))
	f.Add([]byte(`{"name":"abc","destination":{"properties":{"endpointUrl":"http://127.0.0.1:1/"}},"eventDeliverySchema":"CloudEventSchemaV1_0","filter":{"advancedFilters":[{"operatorType":"StringIn","key":"ext1","values":["a"]},{"operatorType":"BoolEquals","key":"data.b","value":true}]}}`))
	f.Add([]byte(`{"filter":{"advancedFilters":[{"operatorType":"NumberIn","key":"data.a","values":"x"},{"operatorType":"NumberLessThan","key":"data.a","value":[1]}]}}`))
	f.Add([]byte(`{"name":5,"retryPolicy":{"maxDeliveryAttempts":"x"}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	events := []Event{matchEvent}
	for _, e := range sampleEvents() {
		events = append(events, e)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSubscription(data, ValidateOptions{AllowHTTP: true})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			// An invalid filter must still be safe to match (it matches nothing).
			for _, e := range events {
				_ = s.Match(e)
			}
			return
		}
		m, err := NewMatcher(s)
		if err != nil {
			t.Fatalf("valid subscription, invalid matcher: %v", err)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := DecodeSubscription(b, ValidateOptions{AllowHTTP: true})
		if err != nil {
			t.Fatalf("round trip invalid: %v\n%s", err, b)
		}
		m2, err := NewMatcher(s2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if m.Match(e) != m2.Match(e) {
				t.Fatalf("round trip changed the match of %s\n%s", e.Type, b)
			}
		}
	})
}
