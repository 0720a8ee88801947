package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/sas"
)

// apiAs calls the hub's HTTPS API with a token of policy.
func (h *hub) apiAs(policy, method, path string, body any) (int, []byte) {
	h.t.Helper()
	p, ok := h.Registry().Policy(policy)
	if !ok {
		h.t.Fatalf("no policy %s", policy)
	}
	tok, err := sas.Sign("localhost", p.PrimaryKey, policy, time.Now().Add(time.Hour))
	if err != nil {
		h.t.Fatal(err)
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, "https://"+h.HTTPSAddr()+path, rd)
	req.Header.Set("Authorization", tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: h.tlsConfig()}}).Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// Issue 17 item 2: only a key with the owner's rights may change what the
// hub records or where it sends data; a ServiceConnect key (the issue's
// way of switching off the audit log) or a registry key is refused with
// 401 and why; every attempt is an Administrative record saying who, what,
// before and after, and those records reach the workspace whatever the
// settings route.
func TestConfigurationChangesNeedTheOwnerAndAreLogged(t *testing.T) {
	h := startHub(t)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer rcv.Close()
	archiveOnly := map[string]any{"name": "quiet", "categories": []string{"Connections"}, "archive": map[string]any{}}
	sub := func(types ...string) map[string]any {
		return map[string]any{"name": "ops", "filter": map[string]any{"includedEventTypes": types},
			"destination": map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": rcv.URL}}}
	}
	changes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/diagnostic-settings", archiveOnly},
		{"PUT", "/api/v1/diagnostic-settings/quiet", archiveOnly},
		{"DELETE", "/api/v1/diagnostic-settings/quiet", nil},
		{"POST", "/api/v1/subscriptions", sub("Microsoft.Devices.DeviceConnected")},
		{"PUT", "/api/v1/subscriptions/ops", sub("Microsoft.Devices.DeviceConnected")},
		{"DELETE", "/api/v1/subscriptions/ops", nil},
		{"POST", "/api/v1/alerts/reload", nil},
	}
	for _, policy := range []string{"service", "registryReadWrite", "registryRead"} {
		for _, c := range changes {
			status, body := h.apiAs(policy, c.method, c.path, c.body)
			if status != 401 || !strings.Contains(string(body), "owner's rights") || !strings.Contains(string(body), "'"+policy+"' lacks") {
				t.Errorf("%s: %s %s: %d %s, want 401 explaining the owner's rights", policy, c.method, c.path, status, body)
			}
		}
	}
	// Reading stays with ServiceConnect.
	if status, body := h.apiAs("service", "GET", "/api/v1/diagnostic-settings", nil); status != 200 {
		t.Errorf("service reads the settings: %d %s", status, body)
	}

	// The owner: a setting that routes only Connections, to an archive
	// (the workspace gets nothing the settings name), then a subscription
	// created, changed and deleted.
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/api/v1/diagnostic-settings", archiveOnly, 201},
		{"POST", "/api/v1/subscriptions", sub("Microsoft.Devices.DeviceConnected"), 201},
		{"PUT", "/api/v1/subscriptions/ops", sub("Microsoft.Devices.DeviceDisconnected"), 200},
		{"DELETE", "/api/v1/subscriptions/ops", nil, 204},
		{"POST", "/api/v1/alerts/reload", nil, 409}, // no rules file: refused, still recorded
	} {
		if status, body := h.apiAs("iothubowner", c.method, c.path, c.body); status != c.status {
			t.Fatalf("owner: %s %s: %d %s, want %d", c.method, c.path, status, body, c.status)
		}
	}

	type props struct {
		Target, Caller, MaskedIPAddress string
		Status                          int
		Before, After                   json.RawMessage
		ErrorMessage                    string
	}
	want := 3*len(changes) + 5
	var recs []connlog.Record
	eventually(t, 15*time.Second, func() error {
		var err error
		recs, err = h.Logs().Find(context.Background(), connlog.Filter{Category: connlog.CategoryAdministrative, Limit: 1000})
		if err != nil {
			return err
		}
		if len(recs) < want {
			return fmt.Errorf("%d Administrative records in the workspace, want %d", len(recs), want)
		}
		return nil
	})
	byCaller := map[string]int{}
	var update *props
	for _, r := range recs {
		var p props
		if err := json.Unmarshal([]byte(r.Properties), &p); err != nil {
			t.Fatalf("properties_s %s: %v", r.Properties, err)
		}
		byCaller[p.Caller]++
		if p.MaskedIPAddress != "127.0.0.XXX" || r.CallerIPAddress != "127.0.0.XXX" {
			t.Errorf("record without the caller's masked address: %s", r.Properties)
		}
		switch {
		case p.Caller != "iothubowner":
			if p.Status != 401 || r.Level != connlog.LevelError || r.ResultType != "401002" || !strings.Contains(p.ErrorMessage, "owner's rights") {
				t.Errorf("refused change recorded as %s %s %d: %s", r.Level, r.ResultType, p.Status, r.Properties)
			}
		case r.OperationName == "Microsoft.EventGrid/eventSubscriptions/write" && p.Status == 200:
			update = &p
		case r.OperationName == "Microsoft.Insights/diagnosticSettings/write" && p.Status == 201:
			if p.Target != "quiet" || string(p.Before) != "null" || !strings.Contains(string(p.After), `"archive"`) {
				t.Errorf("setting created: %s", r.Properties)
			}
		case r.OperationName == "Microsoft.EventGrid/eventSubscriptions/delete":
			if p.Status != 204 || !strings.Contains(string(p.Before), "DeviceDisconnected") || string(p.After) != "null" {
				t.Errorf("subscription deleted: %s", r.Properties)
			}
		case r.OperationName == "Microsoft.Insights/alertRules/reload/action":
			if p.Status != 409 || r.ResultType != "409001" {
				t.Errorf("reload without a rules file: %s %s", r.ResultType, r.Properties)
			}
		}
	}
	for _, c := range []string{"service", "registryReadWrite", "registryRead"} {
		if byCaller[c] != len(changes) {
			t.Errorf("%d records of %s's refused changes, want %d", byCaller[c], c, len(changes))
		}
	}
	if update == nil || !strings.Contains(string(update.Before), "DeviceConnected") || !strings.Contains(string(update.After), "DeviceDisconnected") {
		t.Errorf("subscription update: %+v, want before DeviceConnected and after DeviceDisconnected", update)
	}
	ops := map[string]bool{}
	for _, r := range recs {
		ops[r.OperationName] = true
	}
	for _, op := range []string{"Microsoft.Insights/diagnosticSettings/write", "Microsoft.Insights/diagnosticSettings/delete",
		"Microsoft.EventGrid/eventSubscriptions/write", "Microsoft.EventGrid/eventSubscriptions/delete", "Microsoft.Insights/alertRules/reload/action"} {
		if !ops[op] {
			t.Errorf("no %s record (have %v)", op, slices.Sorted(func(y func(string) bool) {
				for k := range ops {
					if !y(k) {
						return
					}
				}
			}))
		}
	}
}

// A reload by SIGHUP (App.ReloadRules) is recorded too, caller "SIGHUP",
// with the rules before and after.
func TestRulesReloadBySignalIsLogged(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	rule := "rules:\n  - name: low\n    metric: {name: connectedDeviceCount, aggregation: Maximum}\n    operator: \"<\"\n    threshold: %d\n"
	writeFile(t, rules, fmt.Sprintf(rule, 1))
	h := startHubWith(t, filepath.Join(dir, "hub"), func(c *app.Config) { c.RulesFile = rules })
	writeFile(t, rules, fmt.Sprintf(rule, 5))
	if _, err := h.ReloadRules(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		recs, err := h.Logs().Find(context.Background(), connlog.Filter{Category: connlog.CategoryAdministrative})
		if err != nil {
			return err
		}
		for _, r := range recs {
			var p struct {
				Caller, Target string
				Before, After  struct{ Rules []struct{ Threshold float64 } }
			}
			if err := json.Unmarshal([]byte(r.Properties), &p); err != nil {
				return err
			}
			if p.Caller == "SIGHUP" && p.Target == "alertRules" && r.OperationName == "Microsoft.Insights/alertRules/reload/action" &&
				len(p.Before.Rules) == 1 && p.Before.Rules[0].Threshold == 1 && len(p.After.Rules) == 1 && p.After.Rules[0].Threshold == 5 {
				return nil
			}
		}
		return fmt.Errorf("no SIGHUP reload record with threshold 1 → 5 among %d", len(recs))
	})
}
