package events

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// matchEvent has one member of every kind for the filter tables.
var matchEvent = Event{
	ID: "0b1c2d3e-aaaa-5bbb-8ccc-0123456789ab", Type: DeviceDisconnected,
	Topic:   "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/HUB",
	Subject: "devices/Plant1-Pump7", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), DataVersion: "1",
	Data: json.RawMessage(`{
		"n": 5, "f": 2.5, "neg": -3, "s": "Hello World", "b": true, "nul": null, "numstr": "5",
		"obj": {"inner": "Deep", "num": 10, "Mixed": "exact", "mixed": "lower"},
		"nums": [1, 2, 3], "strs": ["alpha", "Beta"], "mixedarr": [7, "seven", false], "objs": [{"a": 1}],
		"tether": {"reason": "keep-alive", "tokenRenewal": false}
	}`),
}

type matchCase struct {
	op     Operator
	key    string
	value  any // for single-value operators
	values any // for the others
	arrays bool
	want   bool
}

func (c matchCase) String() string {
	v := c.values
	if v == nil {
		v = c.value
	}
	b, _ := json.Marshal(v)
	return fmt.Sprintf("%s %s %s arrays=%v", c.op, c.key, b, c.arrays)
}

func runMatch(t *testing.T, schema Schema, cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		s := validSub()
		s.EventDeliverySchema = schema
		s.Filter.EnableAdvancedFilteringOnArrays = c.arrays
		s.Filter.AdvancedFilters = []AdvancedFilter{{OperatorType: c.op, Key: c.key, Value: c.value, Values: c.values}}
		m, err := NewMatcher(s)
		if err != nil {
			t.Errorf("%v: %v", c, err)
			continue
		}
		if got := m.Match(matchEvent); got != c.want {
			t.Errorf("%v: got %v, want %v", c, got, c.want)
		}
	}
}

func TestNumberOperators(t *testing.T) {
	runMatch(t, EventGridSchema, []matchCase{
		{op: NumberIn, key: "data.n", values: []any{1, 5}, want: true},
		{op: NumberIn, key: "data.n", values: []any{1, 2}, want: false},
		{op: NumberIn, key: "data.f", values: []any{2.5}, want: true},
		{op: NumberIn, key: "data.missing", values: []any{5}, want: false},
		{op: NumberIn, key: "data.nul", values: []any{5}, want: false},
		{op: NumberIn, key: "data.numstr", values: []any{5}, want: false}, // "5" is a string
		{op: NumberIn, key: "data.obj", values: []any{5}, want: false},
		{op: NumberIn, key: "data.nums", values: []any{2}, want: false}, // arrays off
		{op: NumberIn, key: "data.nums", values: []any{2}, arrays: true, want: true},
		{op: NumberIn, key: "data.nums", values: []any{9}, arrays: true, want: false},
		{op: NumberIn, key: "data.mixedarr", values: []any{7}, arrays: true, want: true},

		{op: NumberNotIn, key: "data.n", values: []any{1, 2}, want: true},
		{op: NumberNotIn, key: "data.n", values: []any{5}, want: false},
		{op: NumberNotIn, key: "data.missing", values: []any{5}, want: true}, // documented: missing matches
		{op: NumberNotIn, key: "data.nul", values: []any{5}, want: true},
		{op: NumberNotIn, key: "data.numstr", values: []any{5}, want: true}, // wrong type ignored
		{op: NumberNotIn, key: "data.nums", values: []any{2}, want: true},   // arrays off: nothing compared
		{op: NumberNotIn, key: "data.nums", values: []any{2}, arrays: true, want: false},
		{op: NumberNotIn, key: "data.nums", values: []any{9}, arrays: true, want: true},

		{op: NumberLessThan, key: "data.n", value: 6, want: true},
		{op: NumberLessThan, key: "data.n", value: 5, want: false},
		{op: NumberLessThan, key: "data.neg", value: 0, want: true},
		{op: NumberLessThan, key: "data.missing", value: 100, want: false},
		{op: NumberLessThan, key: "data.numstr", value: 100, want: false},
		{op: NumberLessThan, key: "data.nums", value: 2, arrays: true, want: true}, // 1 < 2
		{op: NumberLessThan, key: "data.nums", value: 1, arrays: true, want: false},

		{op: NumberGreaterThan, key: "data.n", value: 4.9, want: true},
		{op: NumberGreaterThan, key: "data.n", value: 5, want: false},
		{op: NumberGreaterThan, key: "data.missing", value: -100, want: false},
		{op: NumberGreaterThan, key: "data.nums", value: 2, arrays: true, want: true},

		{op: NumberLessThanOrEquals, key: "data.n", value: 5, want: true},
		{op: NumberLessThanOrEquals, key: "data.n", value: 4, want: false},
		{op: NumberLessThanOrEquals, key: "data.b", value: 5, want: false},

		{op: NumberGreaterThanOrEquals, key: "data.n", value: 5, want: true},
		{op: NumberGreaterThanOrEquals, key: "data.n", value: 5.1, want: false},
		{op: NumberGreaterThanOrEquals, key: "data.obj.num", value: 10, want: true},
		{op: NumberGreaterThanOrEquals, key: "data.missing", value: 0, want: false},

		{op: NumberInRange, key: "data.n", values: []any{[]any{0, 1}, []any{5, 5}}, want: true},
		{op: NumberInRange, key: "data.f", values: [][2]float64{{2, 3}}, want: true},
		{op: NumberInRange, key: "data.n", values: []any{[]any{6, 9}}, want: false},
		{op: NumberInRange, key: "data.missing", values: []any{[]any{0, 9}}, want: false},
		{op: NumberInRange, key: "data.numstr", values: []any{[]any{0, 9}}, want: false},
		{op: NumberInRange, key: "data.nums", values: []any{[]any{3, 4}}, arrays: true, want: true},
		{op: NumberInRange, key: "data.nums", values: []any{[]any{3, 4}}, want: false},

		{op: NumberNotInRange, key: "data.n", values: []any{[]any{6, 9}}, want: true},
		{op: NumberNotInRange, key: "data.n", values: []any{[]any{0, 5}}, want: false}, // inclusive
		{op: NumberNotInRange, key: "data.missing", values: []any{[]any{0, 9}}, want: true},
		{op: NumberNotInRange, key: "data.numstr", values: []any{[]any{0, 9}}, want: true},
		{op: NumberNotInRange, key: "data.nums", values: []any{[]any{3, 4}}, arrays: true, want: false},
		{op: NumberNotInRange, key: "data.nums", values: []any{[]any{4, 9}}, arrays: true, want: true},
	})
}

func TestBoolOperator(t *testing.T) {
	runMatch(t, EventGridSchema, []matchCase{
		{op: BoolEquals, key: "data.b", value: true, want: true},
		{op: BoolEquals, key: "data.b", value: false, want: false},
		{op: BoolEquals, key: "data.tether.tokenRenewal", value: false, want: true},
		{op: BoolEquals, key: "data.missing", value: false, want: false},
		{op: BoolEquals, key: "data.s", value: true, want: false},
		{op: BoolEquals, key: "data.mixedarr", value: false, want: false},
		{op: BoolEquals, key: "data.mixedarr", value: false, arrays: true, want: true},
	})
}

func TestStringOperators(t *testing.T) {
	runMatch(t, EventGridSchema, []matchCase{
		{op: StringContains, key: "data.s", values: []any{"xyz", "LO WO"}, want: true}, // case-insensitive
		{op: StringContains, key: "data.s", values: []any{"xyz"}, want: false},
		{op: StringContains, key: "data.missing", values: []any{""}, want: false},
		{op: StringContains, key: "data.n", values: []any{"5"}, want: false}, // number, not string
		{op: StringContains, key: "data.strs", values: []any{"et"}, arrays: true, want: true},
		{op: StringContains, key: "data.strs", values: []any{"et"}, want: false},

		{op: StringNotContains, key: "data.s", values: []any{"xyz"}, want: true},
		{op: StringNotContains, key: "data.s", values: []any{"WORLD"}, want: false},
		{op: StringNotContains, key: "data.missing", values: []any{"x"}, want: false}, // documented: missing does not match
		{op: StringNotContains, key: "data.nul", values: []any{"x"}, want: false},
		{op: StringNotContains, key: "data.n", values: []any{"5"}, want: true}, // wrong type ignored
		{op: StringNotContains, key: "data.strs", values: []any{"ALP"}, arrays: true, want: false},
		{op: StringNotContains, key: "data.strs", values: []any{"zzz"}, arrays: true, want: true},

		{op: StringBeginsWith, key: "data.s", values: []any{"hello"}, want: true},
		{op: StringBeginsWith, key: "data.s", values: []any{"world"}, want: false},
		{op: StringBeginsWith, key: "data.missing", values: []any{"h"}, want: false},
		{op: StringBeginsWith, key: "data.strs", values: []any{"be"}, arrays: true, want: true},

		{op: StringNotBeginsWith, key: "data.s", values: []any{"world"}, want: true},
		{op: StringNotBeginsWith, key: "data.s", values: []any{"HELLO"}, want: false},
		{op: StringNotBeginsWith, key: "data.missing", values: []any{"h"}, want: false},
		{op: StringNotBeginsWith, key: "data.strs", values: []any{"be"}, arrays: true, want: false},

		{op: StringEndsWith, key: "data.s", values: []any{"WORLD"}, want: true},
		{op: StringEndsWith, key: "data.s", values: []any{"hello"}, want: false},
		{op: StringEndsWith, key: "data.missing", values: []any{"d"}, want: false},
		{op: StringEndsWith, key: "data.strs", values: []any{"ha"}, arrays: true, want: true},

		{op: StringNotEndsWith, key: "data.s", values: []any{"hello"}, want: true},
		{op: StringNotEndsWith, key: "data.s", values: []any{"world"}, want: false},
		{op: StringNotEndsWith, key: "data.missing", values: []any{"d"}, want: false},
		{op: StringNotEndsWith, key: "data.strs", values: []any{"TA"}, arrays: true, want: false},

		{op: StringIn, key: "data.s", values: []any{"hello world"}, want: true},
		{op: StringIn, key: "data.s", values: []any{"hello"}, want: false},
		{op: StringIn, key: "data.tether.reason", values: []any{"network", "Keep-Alive"}, want: true},
		{op: StringIn, key: "data.missing", values: []any{""}, want: false},
		{op: StringIn, key: "data.n", values: []any{"5"}, want: false},
		{op: StringIn, key: "data.numstr", values: []any{"5"}, want: true},
		{op: StringIn, key: "data.strs", values: []any{"beta"}, want: false},
		{op: StringIn, key: "data.strs", values: []any{"beta"}, arrays: true, want: true},
		{op: StringIn, key: "data.objs", values: []any{"a"}, arrays: true, want: false}, // objects never compared

		{op: StringNotIn, key: "data.s", values: []any{"hello"}, want: true},
		{op: StringNotIn, key: "data.s", values: []any{"HELLO WORLD"}, want: false},
		{op: StringNotIn, key: "data.missing", values: []any{"x"}, want: true}, // documented: missing matches
		{op: StringNotIn, key: "data.nul", values: []any{"x"}, want: true},
		{op: StringNotIn, key: "data.n", values: []any{"5"}, want: true},
		{op: StringNotIn, key: "data.strs", values: []any{"alpha"}, arrays: true, want: false},
		{op: StringNotIn, key: "data.strs", values: []any{"gamma"}, arrays: true, want: true},
	})
}

func TestNullOperators(t *testing.T) {
	runMatch(t, EventGridSchema, []matchCase{
		{op: IsNullOrUndefined, key: "data.missing", want: true},
		{op: IsNullOrUndefined, key: "data.nul", want: true},
		{op: IsNullOrUndefined, key: "data.obj.missing", want: true},
		{op: IsNullOrUndefined, key: "data.s.deeper", want: true}, // through a scalar
		{op: IsNullOrUndefined, key: "data.s", want: false},
		{op: IsNullOrUndefined, key: "data.b", want: false},
		{op: IsNullOrUndefined, key: "data.obj", want: false},
		{op: IsNullOrUndefined, key: "data.nums", want: false},
		{op: IsNotNull, key: "data.s", want: true},
		{op: IsNotNull, key: "data.tether.tokenRenewal", want: true},
		{op: IsNotNull, key: "data.nums", want: true},
		{op: IsNotNull, key: "data.nul", want: false},
		{op: IsNotNull, key: "data.missing", want: false},
		{op: IsNotNull, key: "data.nums.0", want: false}, // no indexing into arrays
	})
}

func TestKeys(t *testing.T) {
	runMatch(t, EventGridSchema, []matchCase{
		{op: StringIn, key: "Subject", values: []any{"devices/plant1-pump7"}, want: true},
		{op: StringIn, key: "subject", values: []any{"devices/plant1-pump7"}, want: true},
		{op: StringIn, key: "EventType", values: []any{"microsoft.devices.devicedisconnected"}, want: true},
		{op: StringIn, key: "ID", values: []any{matchEvent.ID}, want: true},
		{op: StringBeginsWith, key: "Topic", values: []any{"/subscriptions/s/"}, want: true},
		{op: StringIn, key: "DataVersion", values: []any{"1"}, want: true},
		{op: StringIn, key: "Data.S", values: []any{"hello world"}, want: true},   // case-insensitive fallback
		{op: StringIn, key: "data.obj.Mixed", values: []any{"exact"}, want: true}, // exact name first
		{op: StringIn, key: "data.obj.mixed", values: []any{"lower"}, want: true},
		{op: IsNullOrUndefined, key: "data.obj.MIXED", want: true}, // ambiguous: no member
		{op: StringIn, key: "data.obj.INNER", values: []any{"deep"}, want: true},
	})
	runMatch(t, CloudEventSchemaV1_0, []matchCase{
		{op: StringIn, key: "type", values: []any{string(DeviceDisconnected)}, want: true},
		{op: StringBeginsWith, key: "source", values: []any{"/SUBSCRIPTIONS/"}, want: true},
		{op: StringIn, key: "specversion", values: []any{"1.0"}, want: true},
		{op: StringIn, key: "id", values: []any{matchEvent.ID}, want: true},
		{op: StringIn, key: "subject", values: []any{"devices/plant1-pump7"}, want: true},
		{op: StringIn, key: "time", values: []any{"2026-01-02T03:04:05.0000000Z"}, want: true},
		{op: StringIn, key: "datacontenttype", values: []any{"application/json"}, want: true},
		{op: IsNullOrUndefined, key: "comexampleext", want: true}, // extension attributes: never on Tether events
		{op: StringNotIn, key: "comexampleext", values: []any{"x"}, want: true},
		{op: StringIn, key: "data.tether.reason", values: []any{"keep-alive"}, want: true},
	})
}

func TestKeysBySchema(t *testing.T) {
	for _, tc := range []struct {
		schema Schema
		key    string
		ok     bool
	}{
		{EventGridSchema, "Topic", true},
		{EventGridSchema, "source", false},
		{EventGridSchema, "eventTime", false},
		{EventGridSchema, "MetadataVersion", false},
		{CloudEventSchemaV1_0, "source", true},
		{CloudEventSchemaV1_0, "Topic", false},
		{CloudEventSchemaV1_0, "myextension1", true},
		{CloudEventSchemaV1_0, "my_extension", false},
		{CloudEventSchemaV1_0, "averyveryverylongextension", false},
		{EventGridSchema, "data.", false},
		{EventGridSchema, "data.a..b", false},
		{EventGridSchema, "subject.x", false},
		{EventGridSchema, "", false},
	} {
		s := validSub()
		s.EventDeliverySchema = tc.schema
		s.Filter.AdvancedFilters = []AdvancedFilter{{OperatorType: IsNotNull, Key: tc.key}}
		if err := s.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s %q: %v", tc.schema, tc.key, err)
		}
	}
}

func TestFilterCombination(t *testing.T) {
	base := func() Subscription {
		s := validSub()
		s.Filter = Filter{
			IncludedEventTypes: []EventType{DeviceConnected, DeviceDisconnected},
			SubjectBeginsWith:  "devices/plant1-",
			SubjectEndsWith:    "pump7",
			AdvancedFilters: []AdvancedFilter{
				{OperatorType: StringIn, Key: "data.tether.reason", Values: []string{"keep-alive", "network"}},
				{OperatorType: BoolEquals, Key: "data.tether.tokenRenewal", Value: false},
			},
		}
		return s
	}
	if !base().Match(matchEvent) {
		t.Fatal("base filter does not match")
	}
	for name, change := range map[string]func(*Subscription){
		"type not included":       func(s *Subscription) { s.Filter.IncludedEventTypes = []EventType{DeviceCreated} },
		"prefix":                  func(s *Subscription) { s.Filter.SubjectBeginsWith = "devices/plant2-" },
		"suffix":                  func(s *Subscription) { s.Filter.SubjectEndsWith = "pump8" },
		"case-sensitive subject":  func(s *Subscription) { s.Filter.IsSubjectCaseSensitive = true },
		"second filter fails":     func(s *Subscription) { s.Filter.AdvancedFilters[1].Value = true },
		"invalid filter":          func(s *Subscription) { s.Filter.AdvancedFilters[0].Key = "nope" },
		"first filter fails (OR)": func(s *Subscription) { s.Filter.AdvancedFilters[0].Values = []string{"client", "network"} },
	} {
		s := base()
		change(&s)
		if s.Match(matchEvent) {
			t.Errorf("%s: matched", name)
		}
	}
	s := base()
	s.Filter.IsSubjectCaseSensitive = true
	s.Filter.SubjectBeginsWith, s.Filter.SubjectEndsWith = "devices/Plant1-", "Pump7"
	if !s.Match(matchEvent) {
		t.Error("case-sensitive subject with the right case")
	}
	s = base()
	s.Filter.IncludedEventTypes = []EventType{"microsoft.devices.devicedisconnected"}
	if !s.Match(matchEvent) {
		t.Error("event types ignore case")
	}
	// No filter: everything.
	if !validSub().Match(matchEvent) || !validSub().Match(Event{}) {
		t.Error("empty filter")
	}
	// Undecodable data: data keys are missing.
	bad := matchEvent
	bad.Data = json.RawMessage(`{`)
	s = validSub()
	s.Filter.AdvancedFilters = []AdvancedFilter{{OperatorType: IsNullOrUndefined, Key: "data.s"}}
	if !s.Match(bad) {
		t.Error("undecodable data")
	}
}

// Filters written against the golden events: what subscribers will write.
func TestMatchHubEvents(t *testing.T) {
	ev := sampleEvents()
	s := validSub()
	s.Filter.AdvancedFilters = []AdvancedFilter{{OperatorType: StringBeginsWith, Key: "data.deviceConnectionStateEventInfo.sequenceNumber", Values: []string{"000000000000000001D4"}}}
	if !s.Match(ev["connected"]) || s.Match(ev["created"]) {
		t.Error("sequenceNumber prefix")
	}
	s.Filter.AdvancedFilters = []AdvancedFilter{{OperatorType: BoolEquals, Key: "data.tether.tokenRenewal", Value: false}}
	if !s.Match(ev["connected"]) || s.Match(ev["disconnected"]) || s.Match(ev["created"]) {
		t.Error("tokenRenewal")
	}
	s.Filter.AdvancedFilters = []AdvancedFilter{{OperatorType: NumberGreaterThan, Key: "data.body.Weather.Temperature", Value: 100}}
	if !s.Match(ev["telemetry-json"]) || s.Match(ev["telemetry-binary"]) {
		t.Error("telemetry body")
	}
	s.Filter.AdvancedFilters = []AdvancedFilter{{OperatorType: StringIn, Key: "data.properties.Status", Values: []string{"active"}}}
	if !s.Match(ev["telemetry-json"]) {
		t.Error("telemetry property")
	}
	s.Filter.AdvancedFilters = []AdvancedFilter{{OperatorType: StringIn, Key: "data.twin.status", Values: []string{"enabled"}}}
	s.Filter.IncludedEventTypes = []EventType{DeviceCreated}
	if !s.Match(ev["created"]) || s.Match(ev["deleted"]) {
		t.Error("twin status")
	}
}

func BenchmarkMatch(b *testing.B) {
	s := validSub()
	s.Filter = Filter{
		IncludedEventTypes: []EventType{DeviceConnected, DeviceDisconnected},
		SubjectBeginsWith:  "devices/plant1-",
		AdvancedFilters: []AdvancedFilter{
			{OperatorType: StringIn, Key: "data.tether.reason", Values: []string{"keep-alive", "network"}},
			{OperatorType: BoolEquals, Key: "data.tether.tokenRenewal", Value: false},
		},
	}
	m, err := NewMatcher(s)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("envelope-only", func(b *testing.B) {
		env := validSub()
		env.Filter.SubjectBeginsWith = "devices/plant1-"
		em, _ := NewMatcher(env)
		for b.Loop() {
			em.Match(matchEvent)
		}
	})
	b.Run("data-filters", func(b *testing.B) {
		for b.Loop() {
			m.Match(matchEvent)
		}
	})
}
