package app_test

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// promtool finds the promtool binary (Debian package prometheus, which
// scripts/test installs). Without it the test fails when
// TETHER_REQUIRE_PROMTOOL=1 (scripts/test sets it) and is skipped
// otherwise.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := lookPromtool()
	if err == nil {
		return path
	}
	if os.Getenv("TETHER_REQUIRE_PROMTOOL") == "1" {
		t.Fatal("promtool is not installed (apt-get install prometheus); TETHER_REQUIRE_PROMTOOL=1 requires it")
	}
	t.Skip("promtool is not installed (apt-get install prometheus, or run ./scripts/test); skipping")
	return ""
}

func lookPromtool() (string, error) { return exec.LookPath("promtool") }

// runPromtool runs promtool with args and stdin; it fails the test with
// promtool's output unless promtool exits 0 and prints no lint problem.
func runPromtool(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// A live scrape of /metrics, with the families populated (a device
// connected, a refusal, telemetry, webhook deliveries), passes
// `promtool check metrics` without a lint complaint.
func TestMetricsPassPromtool(t *testing.T) {
	promtool(t)
	h := startHub(t)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	if status, body := h.api("POST", "/api/v1/subscriptions", map[string]any{
		"name":        "prom",
		"destination": map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": srv.URL}},
	}); status != 201 {
		t.Fatalf("subscription: %d %s", status, body)
	}
	key := h.device("p1")
	c, rc := h.v3("p1", username("p1"), h.token("p1", key, time.Hour))
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	if _, rc := h.v3("p1", username("p1"), "SharedAccessSignature sr=x&sig=y&se=1"); rc != 5 {
		t.Fatalf("bad token: CONNACK %d", rc)
	}
	if tok := c.Publish("devices/p1/messages/events/", 1, false, "x"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	var text string
	eventually(t, 10*time.Second, func() error {
		_, text = h.scrape("")
		for _, want := range []string{"tether_connected_devices 1", "tether_d2c_telemetry_ingress_messages_total 1", "tether_device_auth_failures_total",
			`tether_event_deliveries_total{result="success",subscription="prom"}`, "tether_event_delivery_latency_seconds_bucket"} {
			if !strings.Contains(text, want) {
				return errorf("/metrics lacks %q yet", want)
			}
		}
		return nil
	})
	if out := runPromtool(t, text, "check", "metrics"); strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics complains:\n%s", out)
	}
}

// The example Prometheus alert rules shipped in deploy/ are valid, and
// their unit tests (tether-alerts.test.yml: a 30 % drop of connected
// devices fires, failing deliveries fire) pass.
func TestExampleAlertRulesPassPromtool(t *testing.T) {
	promtool(t)
	dir, err := filepath.Abs("../../deploy/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if out := runPromtool(t, "", "check", "rules", filepath.Join(dir, "tether-alerts.yml")); !strings.Contains(out, "SUCCESS: 13 rules found") {
		t.Errorf("promtool check rules: %s", out)
	}
	if out := runPromtool(t, "", "test", "rules", filepath.Join(dir, "tether-alerts.test.yml")); !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules: %s", out)
	}
}
