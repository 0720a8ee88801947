package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/metrics"
	"github.com/tether-hub/tether/internal/notify/notifytest"
)

// alertSink records common-alert-schema payloads with their arrival time.
type alertSink struct {
	mu  sync.Mutex
	got []arrival
}

type arrival struct {
	at time.Time
	p  alert.Payload
}

func (s *alertSink) add(data []byte) error {
	var p alert.Payload
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	s.mu.Lock()
	s.got = append(s.got, arrival{time.Now(), p})
	s.mu.Unlock()
	return nil
}

func (s *alertSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := s.add(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// wait returns the first payload with this monitorCondition.
func (s *alertSink) wait(t *testing.T, condition string, timeout time.Duration) arrival {
	t.Helper()
	var a arrival
	eventually(t, timeout, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, x := range s.got {
			if x.p.Data.Essentials.MonitorCondition == condition {
				a = x
				return nil
			}
		}
		return fmt.Errorf("no %s notification yet (%d received)", condition, len(s.got))
	})
	return a
}

func (s *alertSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// connectFleet connects n devices over plain MQTT and returns their
// connections.
func (h *hub) connectFleet(prefix string, n int) []*rawConn {
	h.t.Helper()
	conns := make([]*rawConn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		key := h.device(id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialRaw(h.TCPAddr(), nil)
			if err != nil {
				errs <- err
				return
			}
			rc, err := c.connect(id, username(id), h.token(id, key, time.Hour), 60)
			if err != nil || rc != 0 {
				errs <- fmt.Errorf("%s: CONNACK %d %v", id, rc, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

// reconnect opens a new connection for device id (its key from the registry).
func (h *hub) reconnect(id string) *rawConn {
	h.t.Helper()
	d, ok := h.Registry().Device(id)
	if !ok {
		h.t.Fatalf("no device %s", id)
	}
	c, err := dialRaw(h.TCPAddr(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	rc, err := c.connect(id, username(id), h.token(id, d.Authentication.SymmetricKey.PrimaryKey, time.Hour), 60)
	if err != nil || rc != 0 {
		h.t.Fatalf("%s: CONNACK %d %v", id, rc, err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// ruleValue is the last value a rule saw (its unsplit series).
func (h *hub) ruleValue(name string) (float64, alert.State, error) {
	for _, r := range h.Alerts().Rules() {
		if r.Name != name {
			continue
		}
		if r.LastError != "" {
			return 0, r.State, fmt.Errorf("rule %s: %s", name, r.LastError)
		}
		for _, in := range r.Alerts {
			if in.Value != nil && len(in.Dimensions) == 0 {
				return *in.Value, r.State, nil
			}
		}
		return 0, r.State, fmt.Errorf("rule %s has no value yet", name)
	}
	return 0, "", fmt.Errorf("no rule %s", name)
}

// The seed's scenario: 100 devices connected, a rule
// connectedDeviceCount < 90 evaluated every second; 20 devices drop →
// every action of the group (webhook, email, NATS subject, command) gets
// Fired (the latencies are logged; bench/cmd/alertbench measures them);
// they reconnect → Resolved.
func TestMetricAlertFiresAndResolvesEndToEnd(t *testing.T) {
	sink := &alertSink{}
	web := httptest.NewServer(sink)
	defer web.Close()
	smtp := notifytest.StartSMTP(t)
	dir := t.TempDir()
	cmdOut := filepath.Join(dir, "command.out")
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat >> "+cmdOut+"\necho >> "+cmdOut+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.yaml")
	// The rule starts disabled: with no device connected yet it would
	// fire at once (0 < 90); it is enabled by a reload once the fleet is in.
	content := fmt.Sprintf(`
smtp: {addr: %q, from: tether@example.com}
actionGroups:
  - name: ops
    actions:
      - webhook: {url: %q}
      - email: {to: [ops@example.com]}
      - nats: {subject: alerts.ops}
      - command: {run: [%q]}
rules:
  - name: connected-devices-low
    description: A significant number of devices dropped
    severity: 2
    metric: {name: connectedDeviceCount, aggregation: Average}
    operator: LessThan
    threshold: 90
    frequency: 1s
    window: 1s
    autoResolve: {after: 2}
    actionGroups: [ops]
    enabled: false
`, smtp.Addr, web.URL+"/alerts", script)
	writeFile(t, rules, content)
	h := startHubWith(t, filepath.Join(dir, "hub"), func(c *app.Config) { c.RulesFile = rules })
	natsSink := &alertSink{}
	sub, err := h.Journal().NC.Subscribe("alerts.ops", func(m *nats.Msg) { _ = natsSink.add(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	conns := h.connectFleet("fleet", 100)
	// The CONNACKs are in; the one-second samples follow. Enable the rule
	// only once a whole window holds nothing but 100, or its first
	// evaluation can average in a sample from before the fleet was in.
	eventually(t, 10*time.Second, func() error {
		if v, _ := h.latest(metrics.ConnectedDevices); v != 100 {
			return fmt.Errorf("connectedDeviceCount %v, want 100", v)
		}
		return nil
	})
	time.Sleep(time.Second)
	writeFile(t, rules, strings.Replace(content, "enabled: false", "enabled: true", 1))
	if st, body := h.api("POST", "/api/v1/alerts/reload", nil); st != 200 {
		t.Fatalf("reload: %d %s", st, body)
	}
	eventually(t, 15*time.Second, func() error {
		v, _, err := h.ruleValue("connected-devices-low")
		if err == nil && v != 100 {
			err = fmt.Errorf("rule sees %v devices", v)
		}
		return err
	})
	if n := sink.count(); n != 0 {
		t.Fatalf("%d notifications before the drop", n)
	}

	drop := time.Now()
	for _, c := range conns[:20] {
		c.Close() // the network goes away: 404104
	}
	fired := sink.wait(t, "Fired", 10*time.Second)
	latency := fired.at.Sub(drop)
	// Logged, not asserted: the ≤ 2 s target is bench/cmd/alertbench's
	// (crossing → notification) on a quiet machine.
	t.Logf("drop → webhook Fired: %s", latency)
	e := fired.p.Data.Essentials
	cr := fired.p.Data.AlertContext.Condition.AllOf[0]
	if fired.p.SchemaID != "azureMonitorCommonAlertSchema" || e.AlertRule != "connected-devices-low" || e.Severity != "Sev2" ||
		e.SignalType != "Metric" || e.MonitoringService != "Platform" || e.ResolvedDateTime != "" ||
		cr.MetricName != "connectedDeviceCount" || cr.Operator != "LessThan" || cr.Threshold != "90" || cr.MetricValue == nil || *cr.MetricValue >= 90 {
		t.Fatalf("Fired payload %+v %+v", e, cr)
	}
	for name, s := range map[string]*alertSink{"nats": natsSink} {
		a := s.wait(t, "Fired", 5*time.Second)
		if a.p.Data.Essentials.AlertID != e.AlertID {
			t.Errorf("%s: alert %s, want %s", name, a.p.Data.Essentials.AlertID, e.AlertID)
		}
		t.Logf("drop → %s Fired: %s", name, a.at.Sub(drop))
	}
	var mailAt time.Time
	eventually(t, 5*time.Second, func() error {
		for _, m := range smtp.Mails() {
			if strings.Contains(m.Data, "Subject: [Tether] Fired: Sev2 alert rule connected-devices-low") {
				mailAt = time.Now()
				if !strings.Contains(m.Data, e.AlertID) || m.To[0] != "ops@example.com" {
					return fmt.Errorf("mail %+v", m)
				}
				return nil
			}
		}
		return fmt.Errorf("%d mails", len(smtp.Mails()))
	})
	t.Logf("drop → mail accepted by the SMTP server: ≤ %s", mailAt.Sub(drop))
	eventually(t, 5*time.Second, func() error {
		b, _ := os.ReadFile(cmdOut)
		if !strings.Contains(string(b), `"monitorCondition":"Fired"`) {
			return fmt.Errorf("command output %q", b)
		}
		return nil
	})

	// The 20 come back: Resolved after 2 evaluations at ≥ 90.
	back := time.Now()
	for i := range 20 {
		h.reconnect(fmt.Sprintf("fleet-%03d", i))
	}
	resolved := sink.wait(t, "Resolved", 15*time.Second)
	t.Logf("reconnect → webhook Resolved: %s", resolved.at.Sub(back))
	r := resolved.p.Data.Essentials
	if r.AlertID != e.AlertID || r.FiredDateTime != e.FiredDateTime || r.ResolvedDateTime == "" {
		t.Fatalf("Resolved essentials %+v", r)
	}
	natsSink.wait(t, "Resolved", 5*time.Second)
	eventually(t, 5*time.Second, func() error {
		for _, m := range smtp.Mails() {
			if strings.Contains(m.Data, "Subject: [Tether] Resolved: Sev2 alert rule connected-devices-low") {
				return nil
			}
		}
		return fmt.Errorf("no Resolved mail in %d", len(smtp.Mails()))
	})
	if n := sink.count(); n != 2 {
		t.Fatalf("webhook got %d notifications, want Fired and Resolved", n)
	}

	// The API has the state and the history.
	st, body := h.api("GET", "/api/v1/alerts/history?rule=connected-devices-low", nil)
	var hist api.AlertHistory
	if st != 200 || json.Unmarshal(body, &hist) != nil || len(hist.History) != 2 ||
		hist.History[0].Condition != alert.Fired || hist.History[1].Condition != alert.Resolved {
		t.Fatalf("history %d %s", st, body)
	}
	st, body = h.api("GET", "/api/v1/alerts", nil)
	var list api.AlertList
	if st != 200 || json.Unmarshal(body, &list) != nil || len(list.Rules) != 1 || list.Rules[0].State != alert.Inactive {
		t.Fatalf("list %d %s", st, body)
	}
	st, body = h.api("GET", "/api/v1/alerts/actions", nil)
	var dests api.AlertDestinations
	if st != 200 || json.Unmarshal(body, &dests) != nil || len(dests.Destinations) != 4 {
		t.Fatalf("actions %d %s", st, body)
	}
	for _, d := range dests.Destinations {
		if d.Sent != 2 || d.Failed != 0 {
			t.Errorf("destination %+v", d)
		}
	}

	// /metrics has the engine's counters, and they pass promtool.
	_, body2 := h.scrape("")
	for _, want := range []string{
		`tether_alerts_firing{rule="connected-devices-low",severity="Sev2"} 0`,
		`tether_alert_notifications_total{action_group="ops",kind="webhook",outcome="sent"} 2`,
		`tether_alert_notifications_total{action_group="ops",kind="email",outcome="failed"} 0`,
		`tether_alert_notifications_rate_limited_total 0`,
	} {
		if !strings.Contains(body2, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(body2, `tether_alert_rule_evaluations_total{rule="connected-devices-low"}`) {
		t.Error("/metrics lacks the evaluations counter")
	}
	if _, err := lookPromtool(); err == nil {
		runPromtool(t, body2, "check", "metrics")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A rules file with problems is refused as a whole (at start and on
// reload) with every problem's position; fired alerts survive a restart
// and resolve after it.
func TestAlertRulesReloadAndRestart(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	bad := `
rules:
  - name: low
    metric: {name: connectedDevicez}
    operator: "<"
    threshold: 1
    frequency: 100ms
`
	writeFile(t, rules, bad)
	a, err := app.New(app.Config{DataDir: filepath.Join(dir, "hub"), Dev: true, MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", RulesFile: rules}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = a.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "rules.yaml:4:20: rules[0].metric: unknown metric") ||
		!strings.Contains(err.Error(), "rules.yaml:7:16: rules[0].frequency: 100ms is too short") {
		t.Fatalf("start with a bad file: %v", err)
	}

	// One device connected; "< 1 connected" fires as soon as it leaves.
	good := `
rules:
  - name: low
    metric: {name: connectedDeviceCount, aggregation: Maximum}
    operator: "<"
    threshold: 1
    frequency: 1s
    autoResolve: {after: 1}
`
	writeFile(t, rules, good)
	hubDir := filepath.Join(dir, "hub")
	h := startHubWith(t, hubDir, func(c *app.Config) { c.RulesFile = rules })
	conn := h.connectFleet("solo", 1)[0]
	eventually(t, 10*time.Second, func() error {
		v, _, err := h.ruleValue("low")
		if err == nil && v != 1 {
			err = fmt.Errorf("value %v", v)
		}
		return err
	})
	conn.Close()
	eventually(t, 10*time.Second, func() error {
		if _, st, _ := h.ruleValue("low"); st != alert.Fired {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})

	// A broken edit is refused with its problems; the rule stays in force.
	writeFile(t, rules, good+"    colour: red\n")
	st, body := h.api("POST", "/api/v1/alerts/reload", nil)
	var probs api.RulesProblems
	if st != 400 || json.Unmarshal(body, &probs) != nil || len(probs.Error.Problems) != 1 ||
		!strings.Contains(probs.Error.Problems[0], `rules.yaml:9:5: rules[0].colour: unknown key "colour"`) {
		t.Fatalf("reload of a bad file: %d %s", st, body)
	}
	if _, state, _ := h.ruleValue("low"); state != alert.Fired {
		t.Fatalf("state after a refused reload: %s", state)
	}
	fired := h.Alerts().History(alert.HistoryQuery{Rule: "low"})
	if len(fired) != 1 || fired[0].Condition != alert.Fired {
		t.Fatalf("history %+v", fired)
	}

	// Restart: the alert is still fired (same id), nothing is notified
	// twice; the device comes back and it resolves.
	writeFile(t, rules, good)
	h.stop()
	h2 := startHubWith(t, hubDir, func(c *app.Config) { c.RulesFile = rules })
	rs := h2.Alerts().Rules()
	if len(rs) != 1 || rs[0].State != alert.Fired || rs[0].Alerts[0].AlertID != fired[0].AlertID {
		t.Fatalf("after restart: %+v", rs)
	}
	// The first windows after the start hold no sample yet: no evidence,
	// so no spurious Resolved (and re-Fired) before the device is back.
	eventually(t, 10*time.Second, func() error {
		v, _, err := h2.ruleValue("low")
		if err == nil && v != 0 {
			err = fmt.Errorf("value %v", v)
		}
		return err
	})
	if recs := h2.Alerts().History(alert.HistoryQuery{Rule: "low"}); len(recs) != 1 {
		t.Fatalf("history after the restart, device still away: %+v", recs)
	}
	h2.reconnect("solo-000")
	eventually(t, 10*time.Second, func() error {
		recs := h2.Alerts().History(alert.HistoryQuery{Rule: "low"})
		if len(recs) != 2 || recs[1].Condition != alert.Resolved || recs[1].AlertID != fired[0].AlertID {
			return fmt.Errorf("history %+v", recs)
		}
		return nil
	})
}

// A log alert: a KQL query over the Connections log counts 404104
// disconnects (one alert for the fleet, and one per device when split by
// DeviceId); the records age out of the window → Resolved.
func TestLogAlertOn404104(t *testing.T) {
	sink := &alertSink{}
	web := httptest.NewServer(sink)
	defer web.Close()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	writeFile(t, rules, fmt.Sprintf(`
actionGroups:
  - name: ops
    actions: [{webhook: {url: %q}}]
rules:
  - name: closed-remotely
    severity: 1
    log:
      query: AzureDiagnostics | where Category == "Connections" and ResultType == "404104"
    operator: GreaterThan
    threshold: 4
    frequency: 1s
    window: 3s
    autoResolve: {after: 1}
    actionGroups: [ops]
  - name: closed-remotely-per-device
    severity: 3
    log:
      query: |
        AzureDiagnostics
        | where OperationName == "deviceDisconnect" and ResultType == "404104"
        | extend DeviceId = tostring(parse_json(properties_s).deviceId)
        | summarize n = count() by DeviceId
      measure: n
      aggregation: Total
      splitBy: [DeviceId]
    operator: GreaterThanOrEqual
    threshold: 1
    frequency: 1s
    window: 3s
    autoResolve: {after: 1}
    actionGroups: [ops]
`, web.URL))
	h := startHubWith(t, filepath.Join(dir, "hub"), func(c *app.Config) { c.RulesFile = rules })
	conns := h.connectFleet("logdev", 8)
	for _, c := range conns[:5] {
		c.Close()
	}
	eventually(t, 15*time.Second, func() error {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		fired := map[string]alert.Payload{}
		for _, a := range sink.got {
			e := a.p.Data.Essentials
			if e.MonitorCondition != "Fired" {
				continue
			}
			key := e.AlertRule
			if d := a.p.Data.AlertContext.Condition.AllOf[0].Dimensions; len(d) > 0 {
				key += "/" + d[0].Value
			}
			fired[key] = a.p
		}
		storm, ok := fired["closed-remotely"]
		if !ok || len(fired) != 6 {
			return fmt.Errorf("fired: %d %v", len(fired), keys(fired))
		}
		c := storm.Data.AlertContext
		if storm.Data.Essentials.SignalType != "Log" || c.ConditionType != "LogQueryCriteria" ||
			*c.Condition.AllOf[0].MetricValue != 5 || !strings.Contains(c.Condition.AllOf[0].SearchQuery, "404104") {
			return fmt.Errorf("storm payload %+v", storm.Data)
		}
		for i := range 5 {
			if _, ok := fired[fmt.Sprintf("closed-remotely-per-device/logdev-%03d", i)]; !ok {
				return fmt.Errorf("no per-device alert for logdev-%03d: %v", i, keys(fired))
			}
		}
		return nil
	})
	// The records leave the 3 s window: everything resolves.
	eventually(t, 20*time.Second, func() error {
		n := 0
		for _, r := range h.Alerts().History(alert.HistoryQuery{}) {
			if r.Condition == alert.Resolved {
				n++
			}
		}
		if n != 6 {
			return fmt.Errorf("%d resolved", n)
		}
		return nil
	})
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The alert endpoints' answers to bad requests, on a hub without a rules
// file.
func TestAlertAPIRefusals(t *testing.T) {
	h := startHub(t)
	for _, c := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{"POST", "/api/v1/alerts/reload", 409, "--rules"},
		{"GET", "/api/v1/alerts/reload", 405, "POST"},
		{"POST", "/api/v1/alerts", 405, "GET"},
		{"GET", "/api/v1/alerts/nope", 404, "no such endpoint"},
		{"GET", "/api/v1/alerts?state=Resolved", 400, "Fired or Inactive"},
		{"GET", "/api/v1/alerts?colour=red", 400, "unknown query parameter"},
		{"GET", "/api/v1/alerts/history?limit=0", 400, "limit"},
		{"GET", "/api/v1/alerts/history?since=yesterday", 400, "since"},
	} {
		st, body := h.api(c.method, c.path, nil)
		if st != c.status || !strings.Contains(string(body), c.msg) {
			t.Errorf("%s %s: %d %s, want %d …%s…", c.method, c.path, st, body, c.status, c.msg)
		}
	}
	for _, path := range []string{"/api/v1/alerts", "/api/v1/alerts/history?since=1h&limit=5", "/api/v1/alerts/actions"} {
		if st, body := h.api("GET", path, nil); st != 200 || !strings.Contains(string(body), "[]") {
			t.Errorf("GET %s: %d %s", path, st, body)
		}
	}
	// No token: 401.
	req, _ := http.NewRequest("GET", "https://"+h.HTTPSAddr()+"/api/v1/alerts", nil)
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: h.tlsConfig()}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}
