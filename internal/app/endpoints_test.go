package app_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tether-hub/tether/internal/app"
)

// Issue 17 item 7: a subscription can point neither at the hub's own
// listeners (HTTPS, MQTT, pprof; IPv4 and IPv6 forms) nor, unless the hub
// allows loopback endpoints, at anything else on this machine; nothing is
// sent to a refused endpoint.
func TestSubscriptionEndpointsNeverReachTheHub(t *testing.T) {
	var hits atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer rcv.Close()
	for _, allow := range []bool{true, false} {
		t.Run(map[bool]string{true: "loopback allowed", false: "loopback refused"}[allow], func(t *testing.T) {
			endpointsRefused(t, allow, rcv.URL)
		})
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the receiver got %d requests, want 1 (the allowed subscription's handshake)", n)
	}
}

func endpointsRefused(t *testing.T, allow bool, receiver string) {
	h := startHubWith(t, t.TempDir(), func(c *app.Config) {
		c.DebugAddr = "127.0.0.1:0"
		c.AllowLoopbackEndpoints = &allow
	})
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	https, tcp := port(h.HTTPSAddr()), port(h.TCPAddr())
	debug := port(h.DebugAddr())
	refused := []string{
		"https://127.0.0.1:" + https + "/api/v1/health",
		"https://localhost:" + https + "/",
		"http://[::1]:" + https + "/",
		"http://[::ffff:127.0.0.1]:" + https + "/",
		"http://127.0.0.1:" + debug + "/debug/pprof/",
		"http://127.0.0.2:" + debug + "/debug/pprof/",
		"http://127.0.0.1:" + tcp + "/",
		"https://169.254.169.254/latest/meta-data/",
		"http://127.1:" + https + "/",
		"https://0.0.0.0:" + https + "/",
	}
	if !allow {
		refused = append(refused, receiver, strings.Replace(receiver, "127.0.0.1", "localhost", 1))
	}
	for i, url := range refused {
		status, body := h.api("POST", "/api/v1/subscriptions", map[string]any{
			"name":        "probe" + string(rune('a'+i)),
			"destination": map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": url}},
		})
		if status != 400 || !strings.Contains(string(body), "endpointUrl") {
			t.Errorf("allow loopback %v: %s: %d %s, want 400 naming endpointUrl", allow, url, status, body)
		}
	}
	status, body := h.api("POST", "/api/v1/subscriptions", map[string]any{
		"name":        "local",
		"destination": map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": receiver}},
	})
	if allow {
		var sub map[string]any
		_ = json.Unmarshal(body, &sub)
		// The receiver answers 200 without the code: reached, awaiting
		// manual validation.
		if status != 201 || sub["provisioningState"] != "AwaitingManualAction" {
			t.Errorf("loopback receiver on a hub that allows it: %d %s", status, body)
		}
	} else if status != 400 {
		t.Errorf("loopback receiver on a hub that refuses it: %d %s", status, body)
	}
}
