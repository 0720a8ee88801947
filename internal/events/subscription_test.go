package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func validSub() Subscription {
	return Subscription{
		Name:        "ops-alerts",
		Destination: Destination{Properties: DestinationProperties{EndpointURL: "https://ops.example.com/hook?code=abc"}},
	}
}

func TestDefaults(t *testing.T) {
	s := validSub()
	s.ApplyDefaults()
	want := Subscription{
		Name: "ops-alerts",
		Destination: Destination{EndpointType: "WebHook", Properties: DestinationProperties{
			EndpointURL: "https://ops.example.com/hook?code=abc", MaxEventsPerBatch: 1, PreferredBatchSizeInKilobytes: 64}},
		EventDeliverySchema:   EventGridSchema,
		RetryPolicy:           RetryPolicy{MaxDeliveryAttempts: 30, EventTimeToLiveInMinutes: 1440},
		DeadLetterDestination: &DeadLetterDestination{EndpointType: "Tether"},
		Tether:                Options{RenewalGraceSeconds: 120},
	}
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		t.Errorf("defaults\n got %s\nwant %s", a, b)
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
	if !s.DeadLettering() || s.Active() || s.HeaderName() != "OPS-ALERTS" || s.Key() != "ops-alerts" {
		t.Error("helpers")
	}
}

func TestGoldenSubscription(t *testing.T) {
	s, err := DecodeSubscription([]byte(exampleSubscription), ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "subscription/example.json", s)
}

const exampleSubscription = `{
  "name": "ops-alerts",
  "destination": {"endpointType": "webhook", "properties": {"endpointUrl": "https://ops.example.com/hook", "maxEventsPerBatch": 10}},
  "filter": {
    "includedEventTypes": ["microsoft.devices.deviceDisconnected", "Microsoft.Devices.DeviceConnected"],
    "subjectBeginsWith": "devices/plant1-",
    "advancedFilters": [
      {"operatorType": "stringin", "key": "data.tether.reason", "values": ["keep-alive", "network"]},
      {"operatorType": "BoolEquals", "key": "data.tether.tokenRenewal", "value": false},
      {"operatorType": "NumberInRange", "key": "data.tether.connectDurationMs", "values": [[0, 60000]]}
    ]
  },
  "eventDeliverySchema": "cloudeventschemav1_0",
  "retryPolicy": {"maxDeliveryAttempts": 10},
  "tether": {"suppressRenewals": true},
  "provisioningState": "Succeeded",
  "validation": {"method": "x", "code": "stolen"}
}`

// Every problem is reported at once, each with its path.
func TestValidateListsEveryError(t *testing.T) {
	long := strings.Repeat("x", 513)
	in := `{
	  "name": "a_",
	  "destination": {"endpointType": "EventHub", "properties": {"endpointUrl": "http://example.com/x", "maxEventsPerBatch": 5001, "preferredBatchSizeInKilobytes": -1}},
	  "filter": {
	    "includedEventTypes": ["Microsoft.Storage.BlobCreated", "All"],
	    "advancedFilters": [
	      {"operatorType": "NumberFuzzy", "key": "data.a"},
	      {"operatorType": "NumberLessThan", "key": "Data", "values": [1]},
	      {"operatorType": "StringIn", "key": "eventTime", "values": ["` + long + `", 3]},
	      {"operatorType": "NumberInRange", "key": "data.n", "values": [[5, 1], [1], "x"]},
	      {"operatorType": "BoolEquals", "key": "data.b", "value": "true"},
	      {"operatorType": "IsNotNull", "key": "data..b", "value": 1},
	      {"key": "data.c", "values": "abc"}
	    ]
	  },
	  "eventDeliverySchema": "CustomInputSchema",
	  "retryPolicy": {"maxDeliveryAttempts": 31, "eventTimeToLiveInMinutes": 1441},
	  "deadLetterDestination": {"endpointType": "StorageBlob"},
	  "tether": {"renewalGraceSeconds": 3601}
	}`
	_, err := DecodeSubscription([]byte(in), ValidateOptions{})
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("%v", err)
	}
	want := []string{
		"name",
		"destination.endpointType",
		"destination.properties.endpointUrl",
		"destination.properties.maxEventsPerBatch",
		"destination.properties.preferredBatchSizeInKilobytes",
		"eventDeliverySchema",
		"retryPolicy.maxDeliveryAttempts",
		"retryPolicy.eventTimeToLiveInMinutes",
		"deadLetterDestination.endpointType",
		"tether.renewalGraceSeconds",
		"filter.includedEventTypes[0]",
		"filter.includedEventTypes[1]",
		"filter.advancedFilters[0].operatorType",
		"filter.advancedFilters[1].key",
		"filter.advancedFilters[1].values",
		"filter.advancedFilters[1].value",
		"filter.advancedFilters[2].key",
		"filter.advancedFilters[2].values[0]",
		"filter.advancedFilters[2].values[1]",
		"filter.advancedFilters[3].values[0]",
		"filter.advancedFilters[3].values[1]",
		"filter.advancedFilters[3].values[2]",
		"filter.advancedFilters[4].value",
		"filter.advancedFilters[5].key",
		"filter.advancedFilters[5].value",
		"filter.advancedFilters[6].operatorType",
	}
	got := map[string]bool{}
	for _, fe := range ve.Errors {
		got[fe.Field] = true
	}
	for _, f := range want {
		if !got[f] {
			t.Errorf("no error for %s", f)
		}
	}
	if len(ve.Errors) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(ve.Errors), len(want), strings.ReplaceAll(err.Error(), "; ", "\n"))
	}
	if len(ve.Unwrap()) != len(ve.Errors) {
		t.Error("Unwrap")
	}
}

func TestFilterLimits(t *testing.T) {
	s := validSub()
	for range 26 {
		s.Filter.AdvancedFilters = append(s.Filter.AdvancedFilters, AdvancedFilter{OperatorType: IsNotNull, Key: "data.a"})
	}
	assertFields(t, s.Validate(), "filter.advancedFilters")
	s.Filter.AdvancedFilters = s.Filter.AdvancedFilters[:25]
	if err := s.Validate(); err != nil {
		t.Errorf("25 filters without values: %v", err)
	}

	s = validSub()
	vals := make([]any, 13)
	for i := range vals {
		vals[i] = float64(i)
	}
	s.Filter.AdvancedFilters = []AdvancedFilter{
		{OperatorType: NumberIn, Key: "data.a", Values: vals},
		{OperatorType: NumberNotIn, Key: "data.b", Values: vals[:12]},
	}
	if err := s.Validate(); err != nil {
		t.Errorf("25 values: %v", err)
	}
	s.Filter.AdvancedFilters = append(s.Filter.AdvancedFilters, AdvancedFilter{OperatorType: NumberLessThan, Key: "data.c", Value: 1})
	assertFields(t, s.Validate(), "filter.advancedFilters")

	s = validSub()
	s.Filter.AdvancedFilters = []AdvancedFilter{{OperatorType: StringIn, Key: "Subject", Values: []string{strings.Repeat("é", 512)}}}
	if err := s.Validate(); err != nil {
		t.Errorf("512 characters (1024 bytes): %v", err)
	}
}

func assertFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want errors for %v, got %v", fields, err)
	}
	if len(ve.Errors) != len(fields) {
		t.Errorf("errors %v, want fields %v", ve.Errors, fields)
		return
	}
	for i, f := range fields {
		if ve.Errors[i].Field != f {
			t.Errorf("error %d: %v, want field %s", i, ve.Errors[i], f)
		}
	}
}

func TestNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"abc": true, "A-b-9": true, strings.Repeat("a", 64): true,
		"ab": false, strings.Repeat("a", 65): false, "a_b": false, "a b": false, "a.b": false, "ä-bc": false, "": false,
	} {
		s := validSub()
		s.Name = name
		if err := s.Validate(); (err == nil) != ok {
			t.Errorf("name %q: %v", name, err)
		}
	}
}

func TestEndpoints(t *testing.T) {
	for _, tc := range []struct {
		url       string
		allowHTTP bool
		loopback  bool
		ok        bool
	}{
		{"https://example.com/hook", false, false, true},
		{"HTTPS://example.com:8443/hook?code=x", false, false, true},
		{"http://127.0.0.1:8080/hook", false, true, true},
		{"http://127.9.9.9/hook", false, true, true},
		{"http://[::1]:1234/", false, true, true},
		{"http://localhost/hook", false, true, true},
		{"http://127.0.0.1:8080/hook", false, false, false},
		{"http://[::1]:1234/", false, false, false},
		{"http://[::ffff:127.0.0.1]:1234/", false, false, false},
		{"https://localhost/hook", false, false, false},
		{"http://example.com/hook", false, false, false},
		{"http://10.0.0.1/hook", false, false, false},
		{"https://10.0.0.1/hook", false, false, true},
		{"https://169.254.169.254/latest/meta-data", false, true, false},
		{"https://127.1/hook", false, true, false},
		{"https://example.com:0/hook", false, false, false},
		{"http://example.com/hook", true, false, true},
		{"ftp://example.com/", true, false, false},
		{"https:///nohost", false, false, false},
		{"https://user:pw@example.com/", false, false, false},
		{"https://example.com/#frag", false, false, false},
		{"example.com/hook", false, false, false},
		{"", false, false, false},
		{"https://exa mple.com", false, false, false},
	} {
		s := validSub()
		s.Destination.Properties.EndpointURL = tc.url
		err := s.ValidateWith(ValidateOptions{AllowHTTP: tc.allowHTTP, Endpoints: EndpointPolicy{AllowLoopback: tc.loopback}})
		if (err == nil) != tc.ok {
			t.Errorf("%q allowHTTP=%v loopback=%v: %v", tc.url, tc.allowHTTP, tc.loopback, err)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	_, err := DecodeSubscription([]byte(`{"name": "abc", "destination": {"properties": {"endpointUrl": "https://x.example"}}, "colour": 1}`), ValidateOptions{})
	if err == nil || !strings.Contains(err.Error(), `unknown member "colour"`) {
		t.Errorf("unknown member: %v", err)
	}
	_, err = DecodeSubscription([]byte(`{"name": 5, "destination": {"properties": {"endpointUrl": "https://x.example"}}}`), ValidateOptions{})
	assertFields(t, err, "name")
	_, err = DecodeSubscription([]byte(`{"name": "abc"`), ValidateOptions{})
	if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("syntax: %v", err)
	}
	_, err = DecodeSubscription([]byte(`{"name": "abc", "destination": {"properties": {"endpointUrl": "https://x.example"}}} {}`), ValidateOptions{})
	if err == nil {
		t.Error("trailing data accepted")
	}
	// Hub-owned state is dropped.
	s, err := DecodeSubscription([]byte(exampleSubscription), ValidateOptions{})
	if err != nil || s.ProvisioningState != "" || s.Validation != nil {
		t.Errorf("%v %+v", err, s)
	}
	// "All" alone means every type.
	s, err = DecodeSubscription([]byte(`{"name": "abc", "destination": {"properties": {"endpointUrl": "https://x.example"}}, "filter": {"includedEventTypes": ["all"]}}`), ValidateOptions{})
	if err != nil || s.Filter.IncludedEventTypes != nil {
		t.Errorf("%v %+v", err, s.Filter)
	}
	// A round trip through JSON keeps a valid subscription valid and equal.
	s, _ = DecodeSubscription([]byte(exampleSubscription), ValidateOptions{})
	b, _ := json.Marshal(s)
	s2, err := DecodeSubscription(b, ValidateOptions{})
	b2, _ := json.Marshal(s2)
	if err != nil || string(b) != string(b2) {
		t.Errorf("round trip: %v\n%s\n%s", err, b, b2)
	}
}

func TestDeadLetterNone(t *testing.T) {
	s := validSub()
	s.DeadLetterDestination = &DeadLetterDestination{EndpointType: "none"}
	s.ApplyDefaults()
	if s.DeadLettering() || s.DeadLetterDestination.EndpointType != DeadLetterNone {
		t.Errorf("%+v", s.DeadLetterDestination)
	}
}
