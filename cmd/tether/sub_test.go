package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/api/apitest"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
	"github.com/tether-hub/tether/internal/sas"
)

// eventsHub is the API of a hub with the in-memory subscription service
// and event feed, behind TLS.
type eventsHub struct {
	*cliHub
	subs *apitest.Subscriptions
	feed *apitest.EventTail
}

func startEventsHub(t *testing.T) *eventsHub {
	t.Helper()
	reg, err := registry.New(context.Background(), memstore.New(), registry.Options{HubName: testHub})
	if err != nil {
		t.Fatal(err)
	}
	h := &eventsHub{cliHub: &cliHub{reg: reg}, subs: apitest.NewSubscriptions(), feed: apitest.NewEventTail()}
	ts := httptest.NewTLSServer(api.New(api.Deps{Registry: reg, HubName: testHub, Subscriptions: h.subs, Events: h.feed, Heartbeat: 50 * time.Millisecond}))
	t.Cleanup(ts.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	owner, _ := reg.Policy("iothubowner")
	cs := sas.ConnectionString{HostName: testHub, SharedAccessKeyName: owner.Name, SharedAccessKey: owner.PrimaryKey}
	h.flags = []string{"--connection-string", cs.String(), "--url", ts.URL, "--ca", ca, "--data-dir", dir}
	return h
}

// runErr runs the CLI and returns standard output and error output.
func (h *eventsHub) runErr(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut syncBuffer
	err := h.runCtx(context.Background(), &out, &errOut, args...)
	return out.String(), errOut.String(), err
}

func (h *eventsHub) stored(t *testing.T, name string) events.Subscription {
	t.Helper()
	s, _, err := h.subs.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("subscription %s: %v", name, err)
	}
	return s
}

func TestSubCommands(t *testing.T) {
	h := startEventsHub(t)

	// create from flags
	out := h.mustRun(t, "sub", "create", "ops-alerts", "--endpoint", "https://ops.example.com/hook",
		"--schema", "cloudevents", "--types", "DeviceDisconnected,deviceconnected",
		"--subject-begins-with", "devices/plant1-", "--subject-ends-with", "-x",
		"--filter", "data.tether.reason StringIn client,network",
		"--filter", "data.tether.connectDurationMs NumberLessThan 60000",
		"--filter", "data.n NumberInRange 1,5 10,20",
		"--max-attempts", "5", "--ttl", "90m", "--batch", "10", "--batch-kb", "128",
		"--suppress-renewals", "--renewal-grace", "3m", "--no-deadletter")
	for _, want := range []string{"Name:", "ops-alerts", "State:", "Succeeded", "CloudEventSchemaV1_0", "DeviceDisconnected,DeviceConnected",
		"data.tether.reason StringIn [\"client\",\"network\"]", "data.n NumberInRange [[1,5],[10,20]]", "1h30m0s", "suppressed (grace 3m0s)", "dropped", "ETag:"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	s := h.stored(t, "ops-alerts")
	want := events.Subscription{
		Name:        "ops-alerts",
		Destination: events.Destination{EndpointType: "WebHook", Properties: events.DestinationProperties{EndpointURL: "https://ops.example.com/hook", MaxEventsPerBatch: 10, PreferredBatchSizeInKilobytes: 128}},
		Filter: events.Filter{
			IncludedEventTypes: []events.EventType{events.DeviceDisconnected, events.DeviceConnected},
			SubjectBeginsWith:  "devices/plant1-", SubjectEndsWith: "-x",
			AdvancedFilters: []events.AdvancedFilter{
				{OperatorType: events.StringIn, Key: "data.tether.reason", Values: []any{"client", "network"}},
				{OperatorType: events.NumberLessThan, Key: "data.tether.connectDurationMs", Value: 60000.0},
				{OperatorType: events.NumberInRange, Key: "data.n", Values: []any{[]any{1.0, 5.0}, []any{10.0, 20.0}}},
			},
		},
		EventDeliverySchema:   events.CloudEventSchemaV1_0,
		RetryPolicy:           events.RetryPolicy{MaxDeliveryAttempts: 5, EventTimeToLiveInMinutes: 90},
		DeadLetterDestination: &events.DeadLetterDestination{EndpointType: "None"},
		Tether:                events.Options{SuppressRenewals: true, RenewalGraceSeconds: 180},
	}
	if got := s.Definition(); !reflect.DeepEqual(got, want) {
		t.Fatalf("stored\n %+v\nwant\n %+v", got, want)
	}

	// create from a file, a flag overriding it, JSON output
	file := filepath.Join(t.TempDir(), "sub.json")
	os.WriteFile(file, []byte(`{"name":"from-file","destination":{"properties":{"endpointUrl":"https://a.example/x"}},"retryPolicy":{"maxDeliveryAttempts":3}}`), 0o600)
	out = h.mustRun(t, "-o", "json", "sub", "create", "-f", file, "--max-attempts", "4")
	var created events.Subscription
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Name != "from-file" || created.RetryPolicy.MaxDeliveryAttempts != 4 || created.ProvisioningState != events.Succeeded {
		t.Fatalf("create -f: %v\n%s", err, out)
	}
	if _, err := h.run(t, "sub", "create", "other-name", "-f", file); err == nil || !strings.Contains(err.Error(), "differs from the name") {
		t.Fatalf("name clash with the file: %v", err)
	}

	// an existing name
	if _, err := h.run(t, "sub", "create", "OPS-alerts", "--endpoint", "https://x.example"); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create existing: %v", err)
	}

	// list
	out = h.mustRun(t, "sub", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "from-file") || !strings.Contains(lines[1], "eventgrid") ||
		!strings.Contains(lines[2], "cloudevents") || !strings.Contains(lines[2], "DeviceDisconnected,DeviceConnected") {
		t.Fatalf("list:\n%s", out)
	}
	var list []events.Subscription
	if err := json.Unmarshal([]byte(h.mustRun(t, "sub", "list", "-o", "json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("list json: %v %v", err, list)
	}

	// show
	out = h.mustRun(t, "sub", "show", "from-file")
	if !strings.Contains(out, "Event types:") || !strings.Contains(out, "All") || !strings.Contains(out, "delivered") || !strings.Contains(out, "validated at") {
		t.Fatalf("show:\n%s", out)
	}
	if _, err := h.run(t, "sub", "show", "ghost-sub"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("show missing: %v", err)
	}

	// update keeps what the flags do not name
	h.mustRun(t, "sub", "update", "ops-alerts", "--max-attempts", "7", "--suppress-renewals=false", "--no-deadletter=false", "--types", "All")
	s = h.stored(t, "ops-alerts")
	if s.RetryPolicy.MaxDeliveryAttempts != 7 || s.Tether.SuppressRenewals || !s.DeadLettering() || len(s.Filter.AdvancedFilters) != 3 ||
		s.RetryPolicy.EventTimeToLiveInMinutes != 90 || len(s.Filter.IncludedEventTypes) != 0 || s.EventDeliverySchema != events.CloudEventSchemaV1_0 {
		t.Fatalf("after update: %+v", s)
	}
	if h.subs.Handshakes() != 2 {
		t.Fatalf("%d handshakes: an update without a new endpoint validated again", h.subs.Handshakes())
	}
	h.mustRun(t, "sub", "update", "ops-alerts", "--clear-filters", "--endpoint", "https://new.example/hook")
	if s = h.stored(t, "ops-alerts"); len(s.Filter.AdvancedFilters) != 0 || s.Destination.Properties.EndpointURL != "https://new.example/hook" || h.subs.Handshakes() != 3 {
		t.Fatalf("after second update: %+v", s)
	}
	// update from a file replaces the definition
	os.WriteFile(file, []byte(`{"destination":{"properties":{"endpointUrl":"https://b.example/x"}}}`), 0o600)
	h.mustRun(t, "sub", "update", "ops-alerts", "-f", file)
	if s = h.stored(t, "ops-alerts"); s.Destination.Properties.EndpointURL != "https://b.example/x" || s.EventDeliverySchema != events.EventGridSchema || s.RetryPolicy.MaxDeliveryAttempts != 30 {
		t.Fatalf("after update -f: %+v", s)
	}

	// delete
	if out := h.mustRun(t, "sub", "delete", "ops-alerts"); strings.TrimSpace(out) != "Deleted subscription ops-alerts" {
		t.Fatalf("delete: %s", out)
	}
	if _, err := h.run(t, "sub", "delete", "ops-alerts"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("delete again: %v", err)
	}
}

func TestSubInvalidListsEveryError(t *testing.T) {
	h := startEventsHub(t)
	_, err := h.run(t, "sub", "create", "x", "--endpoint", "ftp://a.example", "--max-attempts", "31", "--types", "DeviceTwinChanged",
		"--filter", "data.a StringIn", "--batch-kb", "5000")
	var inv *InvalidSubscriptionError
	if !errors.As(err, &inv) {
		t.Fatalf("error %T %v", err, err)
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	if !strings.HasPrefix(lines[0], "the hub refused the subscription (6 problems):") || len(lines) != 7 {
		t.Fatalf("message:\n%s", msg)
	}
	for _, f := range []string{"name", "destination.properties.endpointUrl", "retryPolicy.maxDeliveryAttempts", "filter.includedEventTypes[0]",
		"filter.advancedFilters[0].values", "destination.properties.preferredBatchSizeInKilobytes"} {
		if !strings.Contains(msg, "\n  "+f+": ") {
			t.Errorf("no line for %s:\n%s", f, msg)
		}
	}
	if h.subs.Handshakes() != 0 {
		t.Fatal("handshake ran")
	}
}

func TestSubValidationHints(t *testing.T) {
	h := startEventsHub(t)
	h.subs.Handshake = apitest.AwaitManual("c0de", 5*time.Minute, nil)
	out, errOut, err := h.runErr(t, "sub", "create", "manual-1", "--endpoint", "https://x.example")
	if err != nil || !strings.Contains(out, "AwaitingManualAction") || !strings.Contains(out, "awaiting manual validation until") ||
		!strings.Contains(errOut, "open the validationUrl") || strings.Contains(out+errOut, "c0de") {
		t.Fatalf("awaiting: %v\n%s\n%s", err, out, errOut)
	}
	h.subs.Handshake = apitest.Fail("endpoint answered 404")
	out, errOut, err = h.runErr(t, "sub", "create", "failed-1", "--endpoint", "https://x.example", "--schema", "cloudevents")
	if err != nil || !strings.Contains(out, "Failed") || !strings.Contains(out, "WebHookAbuseProtection failed at") || !strings.Contains(out, "endpoint answered 404") ||
		!strings.Contains(errOut, "tether sub update failed-1") {
		t.Fatalf("failed: %v\n%s\n%s", err, out, errOut)
	}
}

func deadLetterFor(t *testing.T, seq string) events.DeadLetter {
	t.Helper()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev, ok := events.FromConnection(events.Resource{}, presence.ConnectionEvent{
		ID: "dev1/" + seq, Kind: presence.Disconnected, Time: at, Hub: testHub, DeviceID: "dev1", Sequence: seq,
		Reason: presence.ReasonNetwork, Result: presence.ResultClosedRemotely,
	}, events.Marks{})
	if !ok {
		t.Fatal("no event")
	}
	return events.DeadLetter{Event: ev, Reason: events.DeadLetterNonRetriable, DeliveryAttempts: 1, LastDeliveryOutcome: "NotFound",
		LastHTTPStatus: 404, PublishTime: at, LastDeliveryAttemptTime: at.Add(time.Second)}
}

func TestSubDeadLetters(t *testing.T) {
	h := startEventsHub(t)
	h.mustRun(t, "sub", "create", "eg-sub", "--endpoint", "https://x.example")
	h.mustRun(t, "sub", "create", "ce-sub", "--endpoint", "https://x.example", "--schema", "cloudevents")
	d1, d2 := deadLetterFor(t, strings.Repeat("0", 63)+"1"), deadLetterFor(t, strings.Repeat("0", 63)+"2")
	h.subs.AddDeadLetters("eg-sub", d1, d2)
	h.subs.AddDeadLetters("ce-sub", d1)

	for _, name := range []string{"eg-sub", "ce-sub"} {
		out := h.mustRun(t, "sub", "deadletters", name)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], d1.Event.ID) ||
			!strings.Contains(lines[1], "DeviceDisconnected  devices/dev1  NonRetriableHttpStatus  1         NotFound (404)  2026-03-01T12:00:01") {
			t.Fatalf("%s table:\n%s", name, out)
		}
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(h.mustRun(t, "sub", "deadletters", "eg-sub", "-o", "json")), &raw); err != nil || len(raw) != 2 || raw[0]["deadLetterReason"] != "NonRetriableHttpStatus" {
		t.Fatalf("json: %v %v", err, raw)
	}
	_, errOut, err := h.runErr(t, "sub", "deadletters", "eg-sub", "--limit", "1")
	if err != nil || !strings.Contains(errOut, "showing the first 1") {
		t.Fatalf("limit: %v %s", err, errOut)
	}

	// replay one, and an id that is not a dead letter
	out, err := h.run(t, "sub", "deadletters", "eg-sub", "--replay", d2.Event.ID, "nope")
	if !strings.Contains(out, "Replayed 1 dead letter of eg-sub") || err == nil || !strings.Contains(err.Error(), "not dead letters of eg-sub: nope") {
		t.Fatalf("replay: %v %s", err, out)
	}
	if r := h.subs.Replayed("eg-sub"); len(r) != 1 || r[0].Event.ID != d2.Event.ID {
		t.Fatalf("replayed %v", r)
	}
	out = h.mustRun(t, "sub", "deadletters", "eg-sub", "--replay", "--all")
	if strings.TrimSpace(out) != "Replayed 1 dead letter of eg-sub" {
		t.Fatalf("replay all: %s", out)
	}
	if out := h.mustRun(t, "sub", "deadletters", "eg-sub"); !strings.Contains(out, "(no dead letters)") {
		t.Fatalf("after replay: %s", out)
	}
	if _, err := h.run(t, "sub", "deadletters", "ghost-sub"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing: %v", err)
	}
}

func TestSubArgumentErrors(t *testing.T) {
	h := startEventsHub(t)
	h.mustRun(t, "sub", "create", "exists-1", "--endpoint", "https://x.example")
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"sub", "create"}, "takes the subscription name"},
		{[]string{"sub", "show"}, "takes the subscription name (got 0 arguments)"},
		{[]string{"sub", "create", "abc", "--schema", "xml"}, `--schema "xml": use eventgrid or cloudevents`},
		{[]string{"sub", "create", "abc", "--ttl", "90s"}, "give whole minutes"},
		{[]string{"sub", "create", "abc", "--max-attempts", "0"}, "--max-attempts 0: must be at least 1"},
		{[]string{"sub", "create", "abc", "--renewal-grace", "1m"}, "--renewal-grace applies to --suppress-renewals"},
		{[]string{"sub", "create", "abc", "--suppress-renewals", "--renewal-grace", "1.5s"}, "whole seconds"},
		{[]string{"sub", "create", "abc", "--filter", "data.x"}, "want 'KEY OPERATOR [VALUES]'"},
		{[]string{"sub", "create", "abc", "--filter", "data.x NumberInRange 1-5"}, `range "1-5": want LOW,HIGH`},
		{[]string{"sub", "create", "abc", "--filter", "data.x IsNotNull 1"}, "takes no values"},
		{[]string{"sub", "create", "abc", "--filter", "data.x BoolEquals true false"}, "takes one value"},
		{[]string{"sub", "create", "abc", "--filter", "data.x StringIn [\"a\""}, "not valid JSON"},
		{[]string{"sub", "create", "abc", "-f", "/nonexistent/sub.json"}, "no such file"},
		{[]string{"sub", "update", "exists-1"}, "nothing to update"},
		{[]string{"sub", "update", "exists-1", "--clear-filters", "--filter", "data.x IsNotNull"}, "give one"},
		{[]string{"sub", "update", "ghost-sub", "--max-attempts", "3"}, "404"},
		{[]string{"sub", "deadletters", "exists-1", "--all"}, "are for --replay"},
		{[]string{"sub", "deadletters", "exists-1", "--replay"}, "give the event ids"},
		{[]string{"sub", "deadletters", "exists-1", "--replay", "--all", "id1"}, "not both"},
		{[]string{"sub", "list", "-o", "yaml"}, `unknown output format "yaml"`},
	}
	for _, tc := range tests {
		_, err := h.run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("tether %s: error %v, want %q", strings.Join(tc.args, " "), err, tc.msg)
		}
	}
}

func TestParseFilterFlag(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"data.tether.reason StringIn client,network", `{"key":"data.tether.reason","operatorType":"StringIn","values":["client","network"]}`},
		{"data.tether.reason stringin client, network", `{"key":"data.tether.reason","operatorType":"StringIn","values":["client","network"]}`},
		{"data.s StringContains 5", `{"key":"data.s","operatorType":"StringContains","values":["5"]}`},
		{`data.s StringIn ["a,b","c d"]`, `{"key":"data.s","operatorType":"StringIn","values":["a,b","c d"]}`},
		{"data.n NumberIn 1,2.5,-3", `{"key":"data.n","operatorType":"NumberIn","values":[1,2.5,-3]}`},
		{"data.n NumberIn 1,x", `{"key":"data.n","operatorType":"NumberIn","values":[1,"x"]}`},
		{"data.n NumberGreaterThanOrEquals 10", `{"key":"data.n","operatorType":"NumberGreaterThanOrEquals","value":10}`},
		{"data.n NumberNotInRange -5,0 10,20", `{"key":"data.n","operatorType":"NumberNotInRange","values":[[-5,0],[10,20]]}`},
		{"data.n NumberInRange [[1,2]]", `{"key":"data.n","operatorType":"NumberInRange","values":[[1,2]]}`},
		{"data.tether.tokenRenewal BoolEquals false", `{"key":"data.tether.tokenRenewal","operatorType":"BoolEquals","value":false}`},
		{"data.moduleId IsNullOrUndefined", `{"key":"data.moduleId","operatorType":"IsNullOrUndefined"}`},
		{"subject Whatever a,b", `{"key":"subject","operatorType":"Whatever","values":["a","b"]}`},
	}
	for _, tc := range tests {
		af, err := parseFilterFlag(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		b, _ := json.Marshal(af)
		if string(b) != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, b, tc.want)
		}
	}
}
