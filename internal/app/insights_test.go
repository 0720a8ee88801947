package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/journal"
)

// dialFrom opens a plain TCP connection to addr from the loopback address
// local (so the hub sees another masked source, 127.0.<x>.XXX).
func dialFrom(t *testing.T, addr, local string) *rawConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c}
}

func (h *hub) diagnosis(id, query string) (int, insight.Diagnosis, string) {
	h.t.Helper()
	path := "/api/v1/devices/" + id + "/diagnosis"
	if query != "" {
		path += "?" + query
	}
	status, body := h.api(http.MethodGet, path, nil)
	var d insight.Diagnosis
	if status == http.StatusOK {
		if err := json.Unmarshal(body, &d); err != nil {
			h.t.Fatalf("diagnosis: %v: %s", err, body)
		}
	}
	return status, d, string(body)
}

// Two clients share one device's credentials from two addresses and keep
// replacing each other: the diagnosis names the duplicate identity first,
// with both sources, and its query runs as it is over the hub's log.
func TestDiagnoseDuplicateIdentityEndToEnd(t *testing.T) {
	h := startHub(t)
	key := h.device("twin-1")
	h.device("quiet-1")
	sources := []string{"127.0.0.1", "127.0.1.1"}
	for i := range 8 {
		c := dialFrom(t, h.TCPAddr(), sources[i%2])
		if rc, err := c.connect("twin-1", username("twin-1"), h.token("twin-1", key, time.Hour), 60); err != nil || rc != 0 {
			t.Fatalf("connect %d: %d %v", i, rc, err)
		}
	}
	h.waitEvents("twin-1", 15) // 8 connects, 7 takeovers
	var d insight.Diagnosis
	eventually(t, 10*time.Second, func() error {
		var status int
		var body string
		status, d, body = h.diagnosis("twin-1", "")
		if status != http.StatusOK {
			return fmt.Errorf("%d %s", status, body)
		}
		if d.Status != insight.StatusProblem || len(d.Verdicts) == 0 || d.Verdicts[0].Cause != insight.CauseDuplicateIdentity {
			return fmt.Errorf("diagnosis %s: %+v", d.Summary, d.Verdicts)
		}
		// The diagnosis reads the log, which follows the journal: wait
		// until it holds all seven takeovers.
		if n := d.Verdicts[0].Evidence.Counts["takeovers"]; n < 7 {
			return fmt.Errorf("%d takeovers in the log so far", n)
		}
		return nil
	})
	v := d.Verdicts[0]
	if v.Evidence.Counts["takeovers"] != 7 || len(v.Evidence.Sources) != 2 || len(v.Evidence.Samples) < 3 {
		t.Errorf("evidence %+v", v.Evidence)
	}
	if !strings.Contains(strings.Join(v.Evidence.Sources, " "), "127.0.1.XXX") {
		t.Errorf("sources %v", v.Evidence.Sources)
	}
	// The verdict's query, as it is, over the log.
	h.waitLogs("twin-1", 15)
	status, ans := h.query(v.Query)
	if status != http.StatusOK || ans.Error != nil || len(ans.Tables) == 0 || len(ans.Tables[0].Rows) < 15 {
		t.Fatalf("query %d %+v:\n%s", status, ans.Error, v.Query)
	}
	// A device without history, an unknown one, bad windows.
	if status, d, body := h.diagnosis("quiet-1", ""); status != http.StatusOK || d.Status != insight.StatusNoHistory {
		t.Errorf("quiet device: %d %s", status, body)
	}
	if status, _, body := h.diagnosis("nobody", ""); status != http.StatusNotFound || !strings.Contains(body, "DeviceNotFound") {
		t.Errorf("unknown device: %d %s", status, body)
	}
	for _, q := range []string{"since=yesterday", "since=30d", "since=1h&until=2h", "sinse=1h"} {
		if status, _, body := h.diagnosis("twin-1", q); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
	// A short window still sees it.
	if status, d, body := h.diagnosis("twin-1", "since=10m"); status != http.StatusOK || len(d.Verdicts) == 0 || d.Verdicts[0].Cause != insight.CauseDuplicateIdentity {
		t.Errorf("since=10m: %d %s", status, body)
	}
}

// 30 of 40 devices drop at once: one incident, announced within 10 s as an
// Insights log record, a Tether.Insights.MassDisconnect event and an alert;
// closed once they are back. A restart keeps it, and a rebuild from the
// journal (state file deleted) journals nothing twice.
func TestMassDisconnectEndToEnd(t *testing.T) {
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
  - name: mass-disconnect
    severity: 1
    log:
      query: AzureDiagnostics | where Category == "Insights" and OperationName == "massDisconnect"
    operator: GreaterThan
    threshold: 0
    frequency: 1s
    window: 30s
    actionGroups: [ops]
`, web.URL))
	hubDir := filepath.Join(dir, "hub")
	h := startHubWith(t, hubDir, func(c *app.Config) { c.RulesFile = rules })
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	status, body := h.api("POST", "/api/v1/subscriptions", map[string]any{
		"name":        "incidents",
		"destination": map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": srv.URL}},
		"filter":      map[string]any{"includedEventTypes": []string{"Tether.Insights.MassDisconnect"}},
	})
	if status != 201 {
		t.Fatalf("subscription: %d %s", status, body)
	}
	conns := h.connectFleet("site", 40)
	time.Sleep(1500 * time.Millisecond) // a baseline second or so of calm
	dropped := time.Now()
	for _, c := range conns[:30] {
		c.Close()
	}
	// Announced within 10 s: the log record (through the log writer), the
	// event, the alert.
	var opened map[string]any
	eventually(t, 10*time.Second, func() error {
		for _, e := range rc.got() {
			if e["eventType"] == "Tether.Insights.MassDisconnect" && e["data"].(map[string]any)["state"] == "open" {
				opened = e
				return nil
			}
		}
		return fmt.Errorf("no MassDisconnect event yet (%d events)", len(rc.got()))
	})
	if d := time.Since(dropped); d > 10*time.Second {
		t.Errorf("event after %s", d)
	}
	data := opened["data"].(map[string]any)
	if data["devices"].(float64) < 25 || !strings.HasPrefix(opened["subject"].(string), "insights/massDisconnect/md-") {
		t.Errorf("event %v", opened)
	}
	fired := sink.wait(t, "Fired", 10*time.Second)
	if fired.p.Data.Essentials.AlertRule != "mass-disconnect" {
		t.Errorf("alert %+v", fired.p.Data.Essentials)
	}
	// They come back; the incident closes with how many did.
	for i := range 30 {
		conns[i] = h.reconnect(fmt.Sprintf("site-%03d", i))
	}
	var inc insight.Incident
	eventually(t, 30*time.Second, func() error {
		status, body := h.api(http.MethodGet, "/api/v1/insights/incidents", nil)
		var out struct{ Incidents []insight.Incident }
		if err := json.Unmarshal(body, &out); status != 200 || err != nil {
			return fmt.Errorf("%d %s", status, body)
		}
		if len(out.Incidents) != 1 || out.Incidents[0].State != insight.IncidentClosed {
			return fmt.Errorf("incidents %+v", out.Incidents)
		}
		inc = out.Incidents[0]
		return nil
	})
	if inc.Devices != 30 || inc.Recovered < 27 || !strings.Contains(inc.Summary, "came back") {
		t.Errorf("incident %+v", inc)
	}
	for _, g := range inc.Groups {
		if g.Dimension == insight.DimResultType && (g.Values[0].Value != "404104" || g.Values[0].Share != 1) {
			t.Errorf("grouping %+v", g)
		}
	}
	// Both records in the log, queryable in KQL.
	eventually(t, 10*time.Second, func() error {
		_, ans := h.query(`AzureDiagnostics | where Category == "Insights" | extend p = parse_json(properties_s) | project OperationName, Level, Devices = toint(p.devices), Source = tostring(p.sourcePrefix), Incident = tostring(p.incidentId) | order by OperationName asc`)
		if ans.Error != nil || len(ans.Tables) == 0 {
			return fmt.Errorf("query: %+v", ans.Error)
		}
		rows := ans.rowsAsMaps()
		if len(rows) != 2 || rows[0]["OperationName"] != "massDisconnect" || rows[1]["OperationName"] != "massDisconnectResolved" ||
			rows[0]["Level"] != "Error" || rows[0]["Incident"] != inc.ID || rows[1]["Source"] != "127.0.0.XXX" {
			return fmt.Errorf("rows %v", rows)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		for _, e := range rc.got() {
			if e["data"].(map[string]any)["state"] == "closed" {
				return nil
			}
		}
		return fmt.Errorf("no closed event")
	})

	// Restart: the engine resumes from its saved state.
	count := func(h *hub) uint64 {
		st, err := h.Journal().JS.Stream(context.Background(), journal.StreamInsights)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	before := count(h)
	h.stop()
	h2 := startHubWith(t, hubDir, nil)
	if got := h2.Insights().Engine().Incidents(0); len(got) != 1 || got[0].ID != inc.ID {
		t.Fatalf("after restart: %+v", got)
	}
	h2.stop()
	// Rebuild: the state file is gone; the journal has it all.
	if err := os.Remove(filepath.Join(hubDir, app.InsightFile)); err != nil {
		t.Fatal(err)
	}
	h3 := startHubWith(t, hubDir, nil)
	eventually(t, 10*time.Second, func() error {
		if got := h3.Insights().Engine().Incidents(0); len(got) != 1 || got[0].ID != inc.ID || got[0].State != insight.IncidentClosed {
			return fmt.Errorf("after rebuild: %+v", got)
		}
		return nil
	})
	if s := h3.Insights().Status(); s.Skipped < 2 {
		t.Errorf("rebuild status %+v: the incident's records should have been derived again and not journalled", s)
	}
	if after := count(h3); after != before {
		t.Errorf("TETHER_INSIGHTS held %d records before the rebuild, %d after", before, after)
	}
	_ = alert.Fired
}

// A device that keeps dropping becomes a flapping device: the
// flappingDevices metric, tether insights flapping and an Insights record
// an alert rule can split by DeviceId.
func TestFlappingDeviceEndToEnd(t *testing.T) {
	h := startHub(t)
	key := h.device("flap-1")
	for range insight.DefaultFlapThreshold + 1 {
		c := dialFrom(t, h.TCPAddr(), "127.0.0.1")
		if rc, err := c.connect("flap-1", username("flap-1"), h.token("flap-1", key, time.Hour), 60); err != nil || rc != 0 {
			t.Fatalf("connect: %d %v", rc, err)
		}
		c.Close()
	}
	eventually(t, 10*time.Second, func() error {
		status, body := h.api(http.MethodGet, "/api/v1/insights/flapping?top=5", nil)
		var out struct{ Devices []insight.FlapScore }
		if err := json.Unmarshal(body, &out); status != 200 || err != nil {
			return fmt.Errorf("%d %s", status, body)
		}
		if len(out.Devices) != 1 || out.Devices[0].DeviceID != "flap-1" || !out.Devices[0].Flapping {
			return fmt.Errorf("flapping %+v", out.Devices)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		status, m, body := h.getMetrics(url.Values{
			"metricnames": {"flappingDevices"}, "aggregation": {"Maximum"}, "interval": {"PT1M"}, "timespan": {"PT5M"},
		})
		if status != 200 || len(m.Value) != 1 || len(m.Value[0].Timeseries) != 1 {
			return fmt.Errorf("metrics %d %s", status, body)
		}
		for _, p := range m.Value[0].Timeseries[0].Data {
			if p["maximum"] == 1.0 {
				return nil
			}
		}
		return fmt.Errorf("no point at 1: %s", body)
	})
	eventually(t, 10*time.Second, func() error {
		_, ans := h.query(`AzureDiagnostics | where Category == "Insights" and OperationName == "deviceFlapping" | extend flapScore = toint(parse_json(properties_s).flapScore) | summarize score = max(flapScore) by DeviceId`)
		if ans.Error != nil || len(ans.Tables) == 0 || len(ans.Tables[0].Rows) != 1 {
			return fmt.Errorf("query %+v %+v", ans.Error, ans.Tables)
		}
		if r := ans.rowsAsMaps()[0]; r["DeviceId"] != "flap-1" || r["score"].(float64) < float64(insight.DefaultFlapThreshold) {
			return fmt.Errorf("row %v", r)
		}
		return nil
	})
}
