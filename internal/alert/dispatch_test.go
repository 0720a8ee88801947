package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/notify/notifytest"
)

// receiver is a webhook endpoint that answers with the statuses it is
// given, then 200.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []Payload
	attempts int
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if len(r.statuses) > 0 {
			st := r.statuses[0]
			r.statuses = r.statuses[1:]
			if st != 200 {
				w.WriteHeader(st)
				return
			}
		}
		if req.Header.Get("Content-Type") != "application/json; charset=utf-8" || req.Header.Get("X-Token") != "s3cret" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.got = append(r.got, p)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) payloads() []Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Payload(nil), r.got...)
}

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var fastRetry = RetryPolicy{Initial: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 4}

func newDispatcher(t *testing.T, groups ...ActionGroup) *Dispatcher {
	d := NewDispatcher(DispatcherOptions{
		Target: Target{ResourceID: "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/tether/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/hub1"},
		Retry:  fastRetry,
	})
	d.SetGroups(groups, SMTPConfig{})
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}

func firedAlert(rule string, groups ...string) Alert {
	r := metricRule(rule, LessThan, 90)
	r.Defaults()
	r.ActionGroups = groups
	r.Description = "Connected devices dropped"
	r.SplitBy = []string{"ResultType"}
	return Alert{
		ID: "0d1c2b3a-0000-4000-8000-000000000001", Rule: r, Condition: Fired,
		Dimensions: map[string]string{"ResultType": "404104"}, Value: 80, HasValue: true,
		FiredAt: t0, WindowStart: t0.Add(-time.Second), WindowEnd: t0,
	}
}

func resolvedOf(a Alert) Alert {
	a.Condition, a.ResolvedAt, a.Reason = Resolved, a.FiredAt.Add(3*time.Second), "condition not met for 3 evaluations"
	return a
}

func TestWebhookCommonAlertSchema(t *testing.T) {
	rcv := newReceiver(t)
	d := newDispatcher(t, ActionGroup{Name: "ops", Actions: []Action{{Webhook: &WebhookAction{URL: rcv.URL, Headers: map[string]string{"X-Token": "s3cret"}}}}})
	a := firedAlert("low", "ops")
	d.Notify(a)
	d.Notify(resolvedOf(a))
	eventually(t, func() error {
		if n := len(rcv.payloads()); n != 2 {
			return fmt.Errorf("%d payloads", n)
		}
		return nil
	})
	p := rcv.payloads()
	e := p[0].Data.Essentials
	if p[0].SchemaID != "azureMonitorCommonAlertSchema" || e.MonitorCondition != "Fired" || e.Severity != "Sev2" ||
		e.SignalType != "Metric" || e.AlertRule != "low" || e.FiredDateTime != "2026-11-26T12:00:00.0000000Z" ||
		e.ResolvedDateTime != "" || e.MonitoringService != "Platform" || e.Description != "Connected devices dropped" ||
		e.AlertID != "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.AlertsManagement/alerts/0d1c2b3a-0000-4000-8000-000000000001" ||
		e.AlertTargetIDs[0] != "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/tether/providers/microsoft.devices/iothubs/hub1" ||
		e.EssentialsVersion != "1.0" || e.AlertContextVersion != "1.0" {
		t.Fatalf("essentials %+v", e)
	}
	c := p[0].Data.AlertContext
	cr := c.Condition.AllOf[0]
	if c.ConditionType != "SingleResourceMultipleMetricCriteria" || c.Condition.WindowSize != "PT1S" ||
		cr.MetricName != "connectedDeviceCount" || cr.MetricNamespace != "Microsoft.Devices/IotHubs" || cr.Operator != "LessThan" ||
		cr.Threshold != "90" || cr.TimeAggregation != "Average" || *cr.MetricValue != 80 ||
		len(cr.Dimensions) != 1 || cr.Dimensions[0] != (Dimension{"ResultType", "404104"}) ||
		c.Condition.WindowStartTime != "2026-11-26T11:59:59.0000000Z" || c.Condition.WindowEndTime != "2026-11-26T12:00:00.0000000Z" {
		t.Fatalf("alertContext %+v", c)
	}
	r := p[1].Data.Essentials
	if r.MonitorCondition != "Resolved" || r.ResolvedDateTime != "2026-11-26T12:00:03.0000000Z" || r.FiredDateTime != e.FiredDateTime || r.AlertID != e.AlertID {
		t.Fatalf("resolved essentials %+v", r)
	}
	if p[1].Data.Custom["reason"] == "" {
		t.Fatal("no reason")
	}
}

func TestLogPayload(t *testing.T) {
	a := firedAlert("keepalive")
	a.Rule.Kind, a.Rule.Metric, a.Rule.Query, a.Rule.Aggregation = KindLog, "", "AzureDiagnostics | where ResultType == 404104", Count
	p := BuildPayload(a, Target{})
	e, c := p.Data.Essentials, p.Data.AlertContext
	if e.SignalType != "Log" || e.MonitoringService != "Log Alerts V2" || !strings.Contains(e.AlertRuleID, "/scheduledQueryRules/keepalive") ||
		c.ConditionType != "LogQueryCriteria" || c.Condition.AllOf[0].SearchQuery != a.Rule.Query || c.Condition.AllOf[0].MetricName != "" {
		t.Fatalf("%+v %+v", e, c)
	}
}

func TestWebhookRetriesThenDelivers(t *testing.T) {
	rcv := newReceiver(t, 500, 429, 503)
	d := newDispatcher(t, ActionGroup{Name: "ops", Actions: []Action{{Webhook: &WebhookAction{URL: rcv.URL, Headers: map[string]string{"X-Token": "s3cret"}}}}})
	a := firedAlert("low", "ops")
	d.Notify(a)
	d.Notify(resolvedOf(a))
	eventually(t, func() error {
		if p := rcv.payloads(); len(p) != 2 {
			return fmt.Errorf("%d payloads", len(p))
		}
		return nil
	})
	p := rcv.payloads()
	if p[0].Data.Essentials.MonitorCondition != "Fired" || p[1].Data.Essentials.MonitorCondition != "Resolved" {
		t.Fatal("out of order")
	}
	eventually(t, func() error { // the receiver has the payload before the sender has the answer
		st, _ := d.Stats()
		if st[0].Sent != 2 || st[0].Retried != 3 || st[0].Failed != 0 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
}

func TestWebhookGivesUp(t *testing.T) {
	// 400 is final at once; 500s until the attempts run out.
	rcv := newReceiver(t, 400, 500, 500, 500, 500)
	d := newDispatcher(t, ActionGroup{Name: "ops", Actions: []Action{{Webhook: &WebhookAction{URL: rcv.URL, Headers: map[string]string{"X-Token": "s3cret"}}}}})
	a := firedAlert("low", "ops")
	d.Notify(a)
	d.Notify(resolvedOf(a))
	eventually(t, func() error {
		st, _ := d.Stats()
		if st[0].Failed != 2 {
			return fmt.Errorf("stats %+v", st[0])
		}
		return nil
	})
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.attempts != 1+fastRetry.Attempts {
		t.Fatalf("%d attempts", rcv.attempts)
	}
}

func TestRateLimitPerRule(t *testing.T) {
	rcv := newReceiver(t)
	d := newDispatcher(t, ActionGroup{Name: "ops", Actions: []Action{{Webhook: &WebhookAction{URL: rcv.URL, Headers: map[string]string{"X-Token": "s3cret"}}}}})
	now := t0
	d.opt.Now = func() time.Time { return now }
	var want []string
	for i := range 5 {
		a := firedAlert("low", "ops")
		a.Rule.RateLimit = RateLimit{Count: 2, Per: time.Minute}
		a.ID = fmt.Sprintf("id-%d", i)
		d.Notify(a)
		d.Notify(resolvedOf(a))
		if i < 2 {
			want = append(want, a.ID+" Fired", a.ID+" Resolved")
		}
	}
	// Another rule has its own budget.
	b := firedAlert("other", "ops")
	b.ID = "other-1"
	d.Notify(b)
	want = append(want, "other-1 Fired")
	// 30 s later one token is back.
	now = now.Add(30 * time.Second)
	a := firedAlert("low", "ops")
	a.Rule.RateLimit = RateLimit{Count: 2, Per: time.Minute}
	a.ID = "id-late"
	d.Notify(a)
	want = append(want, "id-late Fired")
	eventually(t, func() error {
		var got []string
		for _, p := range rcv.payloads() {
			got = append(got, strings.TrimPrefix(p.Data.Essentials.OriginAlertID, "")+" "+p.Data.Essentials.MonitorCondition)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	})
	if _, limited := d.Stats(); limited != 3 {
		t.Fatalf("limited %d", limited)
	}
}

func TestEmailAction(t *testing.T) {
	srv := notifytest.StartSMTP(t)
	d := newDispatcher(t)
	d.SetGroups([]ActionGroup{{Name: "mail", Actions: []Action{{Email: &EmailAction{To: []string{"ops@example.com", "oncall@example.com"}}}}}},
		SMTPConfig{Addr: srv.Addr, From: "tether@example.com"})
	a := firedAlert("low", "mail")
	d.Notify(a)
	eventually(t, func() error {
		if n := len(srv.Mails()); n != 1 {
			return fmt.Errorf("%d mails", n)
		}
		return nil
	})
	m := srv.Mails()[0]
	if m.From != "tether@example.com" || len(m.To) != 2 || !strings.Contains(m.Data, "Subject: [Tether] Fired: Sev2 alert rule low (ResultType=404104)") ||
		!strings.Contains(m.Data, `"schemaId": "azureMonitorCommonAlertSchema"`) || !strings.Contains(m.Data, "Value:        80") {
		t.Fatalf("mail %+v", m)
	}
	// 550 is final, 451 is retried.
	srv.Reject("550 no such user")
	d.Notify(resolvedOf(a))
	eventually(t, func() error {
		st, _ := d.Stats()
		if st[0].Failed != 1 {
			return fmt.Errorf("%+v", st[0])
		}
		return nil
	})
	if st, _ := d.Stats(); st[0].Retried != 0 || !strings.Contains(st[0].LastError, "550") {
		t.Fatalf("%+v", st[0])
	}
	srv.Reject("451 try later")
	b := firedAlert("low2", "mail")
	d.Notify(b)
	eventually(t, func() error {
		st, _ := d.Stats()
		if st[0].Retried < 1 {
			return fmt.Errorf("%+v", st[0])
		}
		return nil
	})
	srv.Reject("")
	eventually(t, func() error {
		if n := len(srv.Mails()); n != 2 {
			return fmt.Errorf("%d mails", n)
		}
		return nil
	})
}

func TestEmailAuthentication(t *testing.T) {
	srv := notifytest.StartSMTP(t)
	srv.RequireAuth("tether", "s3cret")
	d := newDispatcher(t)
	group := []ActionGroup{{Name: "mail", Actions: []Action{{Email: &EmailAction{To: []string{"ops@example.com"}}}}}}
	d.SetGroups(group, SMTPConfig{Addr: srv.Addr, From: "tether@example.com", Username: "tether", Password: "s3cret"})
	d.Notify(firedAlert("low", "mail"))
	eventually(t, func() error {
		if n := len(srv.Mails()); n != 1 {
			return fmt.Errorf("%d mails", n)
		}
		return nil
	})
	// A wrong password is final (535), not retried; no password at all is
	// refused by the server (530).
	for _, cfg := range []SMTPConfig{
		{Addr: srv.Addr, From: "tether@example.com", Username: "tether", Password: "wrong"},
		{Addr: srv.Addr, From: "tether@example.com"},
	} {
		d.SetGroups(group, cfg)
		d.Notify(firedAlert("low2", "mail"))
		eventually(t, func() error {
			st, _ := d.Stats()
			if len(st) != 1 || st[0].Failed != 1 || st[0].Retried != 0 {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
	}
	if n := len(srv.Mails()); n != 1 {
		t.Fatalf("%d mails", n)
	}
}

func TestCommandAction(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "alerts")
	script := filepath.Join(dir, "notify.sh")
	// Fails the first time (no marker yet), then appends stdin and env.
	body := "#!/bin/sh\nif [ ! -e " + dir + "/marker ]; then touch " + dir + "/marker; echo boom >&2; exit 3; fi\n" +
		"cat >> " + out + "\necho \" $TETHER_ALERT_RULE $TETHER_ALERT_CONDITION $TETHER_ALERT_SEVERITY\" >> " + out + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	d := newDispatcher(t, ActionGroup{Name: "run", Actions: []Action{{Command: &CommandAction{Argv: []string{script}}}}},
		ActionGroup{Name: "missing", Actions: []Action{{Command: &CommandAction{Argv: []string{filepath.Join(dir, "nope")}}}}})
	d.Notify(firedAlert("low", "run", "missing"))
	eventually(t, func() error {
		b, _ := os.ReadFile(out)
		if !strings.Contains(string(b), `"monitorCondition":"Fired"`) || !strings.Contains(string(b), " low Fired Sev2") {
			return fmt.Errorf("command output %q", b)
		}
		return nil
	})
	eventually(t, func() error {
		st, _ := d.Stats()
		for _, s := range st {
			if s.Group == "run" && (s.Sent != 1 || s.Retried != 1 || !strings.Contains(s.LastError, "boom")) {
				return fmt.Errorf("%+v", s)
			}
			if s.Group == "missing" && (s.Failed != 1 || s.Retried != 0) {
				return fmt.Errorf("%+v", s)
			}
		}
		return nil
	})
}

func TestNATSAction(t *testing.T) {
	var mu sync.Mutex
	var subjects []string
	fails := 1
	d := NewDispatcher(DispatcherOptions{Retry: fastRetry, Publish: func(_ context.Context, subject string, data []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return fmt.Errorf("no responders")
		}
		var p Payload
		if err := json.Unmarshal(data, &p); err != nil {
			return err
		}
		subjects = append(subjects, subject+" "+p.Data.Essentials.MonitorCondition)
		return nil
	}})
	defer d.Close(context.Background())
	d.SetGroups([]ActionGroup{{Name: "bus", Actions: []Action{{NATS: &NATSAction{Subject: "alerts.ops"}}}}}, SMTPConfig{})
	a := firedAlert("low", "bus")
	d.Notify(a)
	d.Notify(resolvedOf(a))
	eventually(t, func() error {
		mu.Lock()
		defer mu.Unlock()
		if strings.Join(subjects, ",") != "alerts.ops Fired,alerts.ops Resolved" {
			return fmt.Errorf("%v", subjects)
		}
		return nil
	})
}

func TestReloadKeepsUnchangedDestinations(t *testing.T) {
	rcv := newReceiver(t)
	g := ActionGroup{Name: "ops", Actions: []Action{{Webhook: &WebhookAction{URL: rcv.URL, Headers: map[string]string{"X-Token": "s3cret"}}}}}
	d := newDispatcher(t, g)
	d.Notify(firedAlert("low", "ops"))
	eventually(t, func() error {
		if len(rcv.payloads()) != 1 {
			return fmt.Errorf("not delivered")
		}
		return nil
	})
	d.SetGroups([]ActionGroup{g}, SMTPConfig{})
	if st, _ := d.Stats(); len(st) != 1 || st[0].Sent != 1 {
		t.Fatalf("destination replaced: %+v", st)
	}
	d.SetGroups(nil, SMTPConfig{})
	d.Notify(firedAlert("low", "ops"))
	if st, _ := d.Stats(); len(st) != 0 {
		t.Fatalf("%+v", st)
	}
}

// NotifyDone reports each notification's outcome once every destination
// is done with it: Sent when all took it, Failed when one gave up,
// Abandoned when the dispatcher closed first, Sent at once when nothing
// was to be sent.
func TestNotifyDoneOutcomes(t *testing.T) {
	ok := newReceiver(t)
	refuses := newReceiver(t, 400)
	hook := func(url string) Action {
		return Action{Webhook: &WebhookAction{URL: url, Headers: map[string]string{"X-Token": "s3cret"}}}
	}
	d := newDispatcher(t,
		ActionGroup{Name: "ok", Actions: []Action{hook(ok.URL)}},
		ActionGroup{Name: "both", Actions: []Action{hook(ok.URL), hook(refuses.URL)}})
	outcomes := make(chan Outcome, 4)
	record := func(o Outcome) { outcomes <- o }
	d.NotifyDone(firedAlert("sent", "ok"), record)
	if o := <-outcomes; o != Sent {
		t.Fatalf("one destination that took it: %v, want Sent", o)
	}
	d.NotifyDone(firedAlert("failed", "both"), record)
	if o := <-outcomes; o != Failed {
		t.Fatalf("one of two destinations refused it: %v, want Failed", o)
	}
	d.NotifyDone(firedAlert("none"), record)
	if o := <-outcomes; o != Sent {
		t.Fatalf("no action groups: %v, want Sent", o)
	}

	// A destination that does not answer: the close gives up on it.
	block := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	defer hang.Close()
	defer close(block)
	d2 := newDispatcher(t, ActionGroup{Name: "hang", Actions: []Action{{Webhook: &WebhookAction{URL: hang.URL}}}})
	d2.NotifyDone(firedAlert("abandoned", "hang"), record)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := d2.Close(ctx); err == nil {
		t.Fatal("Close did not report the notification it abandoned")
	}
	if o := <-outcomes; o != Abandoned {
		t.Fatalf("closed while sending: %v, want Abandoned", o)
	}
	d2.NotifyDone(firedAlert("after", "hang"), record)
	if o := <-outcomes; o != Abandoned {
		t.Fatalf("after the close: %v, want Abandoned", o)
	}
}
