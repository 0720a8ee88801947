package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/events"
)

// Stream, command and e-mail subscriptions from flags; switching the kind
// on update starts the destination afresh; show prints the destination
// and the delivery figures; log lists attempts.
func TestSubDestinationKinds(t *testing.T) {
	h := startEventsHub(t)
	out := h.mustRun(t, "sub", "create", "fleet-log", "--stream", "--stream-retention", "720h", "--stream-max-per-subject", "1000", "--types", "All")
	if !strings.Contains(out, "Stream: EVENTS_FLEET_LOG (events.fleet-log.>)") || !strings.Contains(out, "720h0m0s; at most no limit, no limit, 1000 events per subject") {
		t.Errorf("create stream:\n%s", out)
	}
	if p := h.stored(t, "fleet-log").Destination.Properties; p.RetentionInHours != 720 || p.MaxMessagesPerSubject != 1000 || p.StreamName != "EVENTS_FLEET_LOG" {
		t.Errorf("stream %+v", p)
	}
	h.mustRun(t, "sub", "create", "restart-gw", "--command", `restart-gateway.sh --site "plant 1" 'it''s'`, "--command-timeout", "2m", "--command-concurrency", "2")
	if p := h.stored(t, "restart-gw").Destination.Properties; !reflect.DeepEqual(p.Command, []string{"restart-gateway.sh", "--site", "plant 1", "its"}) ||
		p.TimeoutInSeconds != 120 || p.MaxConcurrency != 2 {
		t.Errorf("command %+v", p)
	}
	out = h.mustRun(t, "sub", "create", "critical-down", "--email", "oncall@example.com, ops@example.com", "--types", "DeviceDisconnected",
		"--subject-begins-with", "devices/critical-", "--suppress-renewals", "--email-digest", "5m", "--email-rate", "12")
	want := events.Destination{EndpointType: events.EndpointEmail, Properties: events.DestinationProperties{EmailProperties: events.EmailProperties{
		To: []string{"oncall@example.com", "ops@example.com"}, DigestWindowInSeconds: 300, MaxMailsPerRecipientPerHour: 12}}}
	if got := h.stored(t, "critical-down").Destination; !reflect.DeepEqual(got, want) {
		t.Errorf("email %+v", got)
	}
	if !strings.Contains(out, "a digest every 5m0s; at most 12 mails per recipient an hour") || strings.Contains(out, "Batch:") {
		t.Errorf("create email:\n%s", out)
	}

	// An e-mail option on its own keeps the kind; a kind flag switches it.
	h.mustRun(t, "sub", "update", "critical-down", "--email-digest", "0s")
	if p := h.stored(t, "critical-down").Destination.Properties; p.DigestWindowInSeconds != 0 || len(p.To) != 2 {
		t.Errorf("after update %+v", p)
	}
	h.mustRun(t, "sub", "update", "critical-down", "--endpoint", "https://x.example/hook")
	if d := h.stored(t, "critical-down").Destination; d.Kind() != events.EndpointWebHook || d.Properties.To != nil || d.Properties.EndpointURL != "https://x.example/hook" {
		t.Errorf("switched %+v", d)
	}
	out = h.mustRun(t, "sub", "list")
	if !strings.Contains(out, "KIND") || !strings.Contains(out, "Stream   EVENTS_FLEET_LOG (events.fleet-log.>)") ||
		!strings.Contains(out, `Command  restart-gateway.sh --site 'plant 1' its`) {
		t.Errorf("list:\n%s", out)
	}

	at := time.Date(2026, 3, 1, 3, 12, 5, 0, time.UTC)
	h.subs.SetStatus("restart-gw", events.DeliveryStatus{EndpointType: "Command", Running: true, Active: true, Delivered: 12, Retrying: 1,
		DeadLettered: 2, FailedAttempts: 5, LastDeliveryTime: at, LastError: "restart-gateway.sh exited with status 3: gateway busy", LastErrorTime: at},
		events.DeliveryAttempt{Time: at, Attempt: 3, Events: 1, Devices: []string{"sensor-17"}, Outcome: "ExitStatus3", Error: "restart-gateway.sh exited with status 3: gateway busy", Duration: 0.25},
		events.DeliveryAttempt{Time: at.Add(-time.Minute), Attempt: 1, Events: 1, Devices: []string{"sensor-3"}, OK: true, Output: "restarted\nok"})
	out = h.mustRun(t, "sub", "show", "restart-gw")
	for _, w := range []string{"Delivery:", "active", "Delivered:", "12 (last at 2026-03-01T03:12:05Z)", "Retrying:", "Dead-lettered:", "Failed attempts:",
		"Last error:", "2026-03-01T03:12:05Z: restart-gateway.sh exited with status 3: gateway busy",
		"sensor-17  ExitStatus3  250ms", "sensor-3   delivered", "restarted ok"} {
		if !strings.Contains(out, w) {
			t.Errorf("show lacks %q:\n%s", w, out)
		}
	}
	var def events.Subscription
	if err := json.Unmarshal([]byte(h.mustRun(t, "sub", "show", "restart-gw", "-o", "json")), &def); err != nil || def.Name != "restart-gw" {
		t.Errorf("show -o json is the definition: %v %+v", err, def)
	}
	out = h.mustRun(t, "sub", "log", "restart-gw", "--limit", "1")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "ExitStatus3") {
		t.Errorf("log:\n%s", out)
	}
	var st api.SubscriptionStatus
	if err := json.Unmarshal([]byte(h.mustRun(t, "sub", "log", "restart-gw", "-o", "json")), &st); err != nil || st.Delivery.Delivered != 12 || len(st.Deliveries) != 2 ||
		st.Deliveries[1].Output != "restarted\nok" {
		t.Errorf("log json: %v %+v", err, st)
	}
	if out := h.mustRun(t, "sub", "log", "fleet-log"); !strings.Contains(out, "no delivery attempts") {
		t.Errorf("empty log: %s", out)
	}
}

func TestSubDestinationFlagErrors(t *testing.T) {
	h := startEventsHub(t)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"sub", "create", "abc", "--endpoint", "https://x.example", "--email", "a@b.c"}, "--email, --endpoint: a subscription has one destination"},
		{[]string{"sub", "create", "abc", "--stream", "--stream-retention", "90m"}, "give whole hours"},
		{[]string{"sub", "create", "abc", "--command", "run 'x"}, "unclosed single quote"},
		{[]string{"sub", "create", "abc", "--command", " "}, "give the program"},
		{[]string{"sub", "create", "abc", "--command", "x", "--command-timeout", "1.5s"}, "whole seconds"},
		{[]string{"sub", "create", "abc", "--stream=false"}, "choose another destination"},
		{[]string{"sub", "create", "abc-d", "--email", "a@b.c", "--batch", "5"}, "destination.properties.maxEventsPerBatch: applies to WebHook, Stream, Command destinations, not Email"},
	} {
		_, err := h.run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("tether %s: error %v, want %q", strings.Join(tc.args, " "), err, tc.msg)
		}
	}
}

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		`notify.sh --team ops`:          {"notify.sh", "--team", "ops"},
		`  a   b  `:                     {"a", "b"},
		`a 'b c' "d \"e\" \$f \x" g\ h`: {"a", "b c", `d "e" $f \x`, "g h"},
		`'' ""`:                         {"", ""},
		"a \\\nb":                       {"a", "b"},
		``:                              nil,
	} {
		got, err := splitWords(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`'a`, `"a`, `a\`} {
		if _, err := splitWords(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// FuzzSplitWords: splitting never panics, and what events.QuoteArgs
// writes (as show and list print a command) splits back into the same
// words.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"a b", `'a b' c`, `"x\"y"`, "a\\ b", "it's", "$HOME `x`", "\x00", "a\nb\tc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = splitWords(s)
		argv := strings.Split(s, "\x00")
		back, err := splitWords(events.QuoteArgs(argv))
		if err != nil || !reflect.DeepEqual(back, argv) {
			t.Fatalf("%q → %q → %q %v", argv, events.QuoteArgs(argv), back, err)
		}
	})
}
