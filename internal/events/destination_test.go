package events

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Each destination kind decodes with its defaults, derived from the name
// where they name things.
func TestDestinationDefaults(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"name":"Ops-Stream","destination":{"endpointType":"stream","properties":{}}}`,
			`{"endpointType":"Stream","properties":{"maxEventsPerBatch":100,"preferredBatchSizeInKilobytes":64,"streamName":"EVENTS_OPS_STREAM","subjectPrefix":"events.ops-stream","retentionInHours":168}}`},
		{`{"name":"run-it","destination":{"endpointType":"Command","properties":{"command":["notify.sh","--team","ops"]}}}`,
			`{"endpointType":"Command","properties":{"maxEventsPerBatch":1,"preferredBatchSizeInKilobytes":64,"command":["notify.sh","--team","ops"],"timeoutInSeconds":30,"maxConcurrency":4}}`},
		{`{"name":"mail-me","destination":{"endpointType":"EMAIL","properties":{"to":[" Ops <ops@example.com> "]}}}`,
			`{"endpointType":"Email","properties":{"to":["Ops \u003cops@example.com\u003e"],"maxMailsPerRecipientPerHour":60}}`},
		{`{"name":"hook","destination":{"properties":{"endpointUrl":"https://example.com/x"}}}`,
			`{"endpointType":"WebHook","properties":{"endpointUrl":"https://example.com/x","maxEventsPerBatch":1,"preferredBatchSizeInKilobytes":64}}`},
	} {
		s, err := DecodeSubscription([]byte(c.body), ValidateOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		if got := string(mustMarshal(s.Destination)); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.body, got, c.want)
		}
	}
	// PUT: the name comes from the URL, and the defaults from it.
	s, err := DecodeSubscriptionAs([]byte(`{"destination":{"endpointType":"Stream"}}`), ValidateOptions{}, "from-url")
	if err != nil || s.Name != "from-url" || s.Destination.Properties.StreamName != "EVENTS_FROM_URL" {
		t.Fatalf("%+v %v", s, err)
	}
}

// Every problem of a destination is listed, including members of another
// kind and kinds the hub cannot deliver to.
func TestDestinationValidation(t *testing.T) {
	cases := []struct {
		body   string
		o      ValidateOptions
		fields []string
	}{
		{`{"name":"s1-sub","destination":{"endpointType":"Stream","properties":{"endpointUrl":"https://x.example","streamName":"TETHER_CONN","subjectPrefix":"tether.conn","retentionInHours":87601,"maxBytes":-1,"to":["a@b.c"]}}}`, ValidateOptions{},
			[]string{"destination.properties.endpointUrl", "destination.properties.to", "destination.properties.streamName", "destination.properties.subjectPrefix", "destination.properties.retentionInHours", "destination.properties.maxBytes"}},
		{`{"name":"s2-sub","destination":{"endpointType":"Stream","properties":{"streamName":"a.b","subjectPrefix":"events.*"}}}`, ValidateOptions{},
			[]string{"destination.properties.streamName", "destination.properties.subjectPrefix"}},
		{`{"name":"s3-sub","destination":{"endpointType":"Stream","properties":{"subjectPrefix":"a..b"}}}`, ValidateOptions{},
			[]string{"destination.properties.subjectPrefix"}},
		{`{"name":"c1-sub","destination":{"endpointType":"Command","properties":{"timeoutInSeconds":3601,"maxConcurrency":65,"digestWindowInSeconds":5}}}`, ValidateOptions{},
			[]string{"destination.properties.digestWindowInSeconds", "destination.properties.command", "destination.properties.timeoutInSeconds", "destination.properties.maxConcurrency"}},
		{`{"name":"c2-sub","destination":{"endpointType":"Command","properties":{"command":["", "x\u0000"]}}}`, ValidateOptions{},
			[]string{"destination.properties.command[0]", "destination.properties.command[1]"}},
		{`{"name":"c3-sub","destination":{"endpointType":"Command","properties":{"command":["run"]}}}`,
			ValidateOptions{Unavailable: map[string]string{EndpointCommand: "the hub runs no commands"}},
			[]string{"destination.endpointType"}},
		{`{"name":"e1-sub","destination":{"endpointType":"Email","properties":{"to":["not an address"],"maxEventsPerBatch":5,"digestWindowInSeconds":86401,"maxMailsPerRecipientPerHour":-2}}}`, ValidateOptions{},
			[]string{"destination.properties.maxEventsPerBatch", "destination.properties.to[0]", "destination.properties.digestWindowInSeconds", "destination.properties.maxMailsPerRecipientPerHour"}},
		{`{"name":"e2-sub","destination":{"endpointType":"Email","properties":{}}}`, ValidateOptions{},
			[]string{"destination.properties.to"}},
		{`{"name":"w1-sub","destination":{"endpointType":"WebHook","properties":{"endpointUrl":"https://x.example","command":["x"]}}}`, ValidateOptions{},
			[]string{"destination.properties.command"}},
	}
	for _, c := range cases {
		_, err := DecodeSubscription([]byte(c.body), c.o)
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v", c.body, err)
			continue
		}
		var got []string
		for _, fe := range ve.Errors {
			got = append(got, fe.Field)
		}
		if strings.Join(got, " ") != strings.Join(c.fields, " ") {
			t.Errorf("%s\n got %v\nwant %v\n%v", c.body, got, c.fields, err)
		}
	}
	_, err := DecodeSubscription([]byte(cases[5].body), cases[5].o)
	if err == nil || !strings.Contains(err.Error(), "Command destinations are not available on this hub: the hub runs no commands") {
		t.Errorf("unavailable: %v", err)
	}
}

// A checked destination needs no new check until anything of it changes;
// a webhook only when its endpoint or schema does.
func TestNeedsHandshakeByKind(t *testing.T) {
	s, err := DecodeSubscription([]byte(`{"name":"mail-me","destination":{"endpointType":"Email","properties":{"to":["a@example.com"]}}}`), ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.NeedsHandshake() {
		t.Fatal("never checked")
	}
	ok := s.WithCheck(nil, t0, t0.Add(time.Second))
	if ok.ProvisioningState != Succeeded || ok.NeedsHandshake() || ok.Validation.Method != MethodEmail ||
		ok.Validation.Endpoint != "a@example.com" || !ok.Validation.ValidatedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("%+v %+v", ok, ok.Validation)
	}
	changed := ok
	changed.Destination.Properties.MaxMailsPerRecipientPerHour = 5
	if !changed.NeedsHandshake() {
		t.Error("a changed rate limit is checked again")
	}
	changed = ok
	changed.Filter.SubjectBeginsWith = "devices/x"
	if changed.NeedsHandshake() {
		t.Error("a filter change needs no check")
	}
	failed := s.WithCheck(errors.New("smtp: 535 bad credentials"), t0, t0)
	if failed.ProvisioningState != Failed || failed.Validation.Error != "smtp: 535 bad credentials" || !failed.Validation.ValidatedAt.IsZero() {
		t.Fatalf("%+v", failed.Validation)
	}
	hook := validSub()
	hook.ApplyDefaults()
	hook.Validation = &ValidationState{Method: MethodValidationEvent, Endpoint: hook.Destination.Properties.EndpointURL}
	if hook.NeedsHandshake() {
		t.Error("validated webhook")
	}
	hook.Destination.Properties.MaxEventsPerBatch = 10
	if hook.NeedsHandshake() {
		t.Error("a webhook's batch size needs no handshake")
	}
	hook.Destination.EndpointType = EndpointCommand
	if !hook.NeedsHandshake() {
		t.Error("a new kind is checked")
	}
}

func TestLimitsByKind(t *testing.T) {
	s := Subscription{Destination: Destination{EndpointType: EndpointEmail}}
	if s.BatchLimit() != 1 || s.ConcurrencyLimit() != 0 {
		t.Error("email without digest")
	}
	s.Destination.Properties.DigestWindowInSeconds = 60
	if s.BatchLimit() != MaxMaxEventsPerBatch {
		t.Error("email digest")
	}
	s = Subscription{Destination: Destination{EndpointType: EndpointCommand, Properties: DestinationProperties{MaxEventsPerBatch: 7,
		CommandProperties: CommandProperties{MaxConcurrency: 3}}}}
	if s.BatchLimit() != 7 || s.ConcurrencyLimit() != 3 {
		t.Error("command")
	}
}

func TestTargetAndQuoting(t *testing.T) {
	d := Destination{EndpointType: EndpointCommand, Properties: DestinationProperties{CommandProperties: CommandProperties{
		Command: []string{"notify.sh", "--msg", "it's down", "", "$HOME"}}}}
	if got := d.Target(); got != `notify.sh --msg 'it'\''s down' '' '$HOME'` {
		t.Errorf("%s", got)
	}
	d = Destination{EndpointType: EndpointStream, Properties: DestinationProperties{StreamProperties: StreamProperties{StreamName: "EVENTS_X", SubjectPrefix: "events.x"}}}
	if got := d.Target(); got != "EVENTS_X (events.x.>)" {
		t.Errorf("%s", got)
	}
}

func TestSummary(t *testing.T) {
	ev := sampleEvents()
	long := disconnectedEvent()
	long.DurationMs = (6*3600 + 2*60 + 7) * 1000
	long.Time = time.Date(2026, 3, 1, 3, 12, 5, 0, time.UTC)
	dis, _ := FromConnection(testResource, long, Marks{})
	renewal := connectedEvent()
	renewal.TokenRenewal = true
	ren, _ := FromConnection(testResource, renewal, Marks{})
	for _, c := range []struct {
		e    Event
		want string
	}{
		{dis, "LogicAppTestDevice disconnected at 03:12:05Z: 404104 keep-alive, after 6 h 02 min connected"},
		{ev["connected"], "LogicAppTestDevice connected at 19:17:44Z over MQTT 3.1.1"},
		{ren, "LogicAppTestDevice connected at 19:17:44Z over MQTT 3.1.1 (token renewal)"},
		{ev["created"], "LogicAppTestDevice was created at 19:17:44Z"},
		{ev["deleted"], "LogicAppTestDevice was deleted at 19:17:44Z"},
	} {
		if got := Summary(c.e); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
	if got := Summary(ev["telemetry-json"]); !strings.HasPrefix(got, "LogicAppTestDevice sent telemetry at ") || !strings.HasSuffix(got, " bytes)") {
		t.Errorf("%s", got)
	}
	d := strings.Join(Details(dis), "\n")
	for _, want := range []string{"Reason:        keep-alive", "Result:        404104 DeviceConnectionClosedRemotely", "Protocol:      MQTT-WS 5", "Connected for: 6 h 02 min", "Detail:        no packet"} {
		if !strings.Contains(d, want) {
			t.Errorf("details lack %q:\n%s", want, d)
		}
	}
	for d, want := range map[time.Duration]string{42 * time.Second: "42 s", 303 * time.Second: "5 min 03 s", 73*time.Hour + 30*time.Minute: "3 d 01 h"} {
		if got := HumanDuration(d); got != want {
			t.Errorf("%v: %s", d, got)
		}
	}
}
