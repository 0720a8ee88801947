package probe_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/probe"
	"github.com/tether-hub/tether/internal/registry"
)

// TestWebSocketsThroughProxy: 8883 is closed; the HTTPS port is reached
// only through an HTTP CONNECT proxy, which wants credentials.
func TestWebSocketsThroughProxy(t *testing.T) {
	_, cs := newDevice(t, registry.Enabled)
	p := &connectProxy{user: "dev", pass: "s3cret"}
	addr := p.start(t)

	cfg := config(cs)
	cfg.MQTTPort = closedPort(t)
	cfg.Proxy = "http://" + addr
	rep := run(t, cfg)
	s := step(t, rep, probe.StepTCP, hostPort(hub.https))
	if s.Status != probe.Fail || s.TCP.Proxy == nil || s.TCP.Proxy.Status != 407 || !strings.Contains(s.Hint, "user:password") {
		t.Fatalf("without credentials: %s %q %q", s.Status, s.Summary, s.Hint)
	}

	cfg.Proxy = "http://dev:s3cret@" + addr
	rep = run(t, cfg)
	if rep.Proxy != "http://dev:xxxxx@"+addr {
		t.Errorf("the report shows the proxy as %q", rep.Proxy)
	}
	s = step(t, rep, probe.StepTCP, hostPort(hub.https))
	if s.Status != probe.Pass || s.TCP.Proxy.Status != 200 {
		t.Fatalf("tunnel: %s %q", s.Status, s.Summary)
	}
	for _, n := range []int{probe.StepTLS, probe.StepClock, probe.StepWebSocket} {
		if s := step(t, rep, n, hostPort(hub.https)); s.Status != probe.Pass {
			t.Errorf("step %d through the proxy: %s %s", n, s.Status, s.Summary)
		}
	}
	if ws := step(t, rep, probe.StepWebSocket, ""); ws.MQTT.Proxy == "" || ws.MQTT.Transport != "mqtt-ws" {
		t.Errorf("websocket result %+v", ws.MQTT)
	}
	// TLS, clock and WebSocket each went through a tunnel to the hub.
	want := hostPort(hub.https)
	n := 0
	for _, target := range p.seen() {
		if target != want {
			t.Errorf("the proxy tunnelled to %s", target)
		}
		n++
	}
	if n < 4 {
		t.Errorf("%d tunnels, want one per step on the HTTPS port (tcp, tls, clock, websocket)", n)
	}
	if rep.ExitStatus != 12 || !strings.Contains(rep.Conclusion, "MQTT over WebSockets on port") {
		t.Errorf("exit %d, %q", rep.ExitStatus, rep.Conclusion)
	}
}

func TestProxyUnreachable(t *testing.T) {
	_, cs := newDevice(t, registry.Enabled)
	cfg := config(cs)
	cfg.Proxy = "http://127.0.0.1:" + itoa(closedPort(t))
	rep := run(t, cfg)
	s := step(t, rep, probe.StepTCP, hostPort(hub.https))
	if s.Status != probe.Fail || !strings.Contains(s.Summary, "refused the connection") {
		t.Fatalf("%s %q", s.Status, s.Summary)
	}
	// MQTT over TLS does not use the proxy.
	if m := step(t, rep, probe.StepMQTT, ""); m.Status != probe.Pass {
		t.Errorf("mqtt: %s %s", m.Status, m.Summary)
	}
}

// TestKeepAliveFindsIdleCut: a relay that ends flows idle for 1.5 s, by
// closing them or by resetting the device's side.
func TestKeepAliveFindsIdleCut(t *testing.T) {
	for _, mode := range []string{"close", "reset"} {
		t.Run(mode, func(t *testing.T) {
			_, cs := newDevice(t, registry.Enabled)
			cfg := config(cs)
			cfg.MQTTPort = idleRelay(t, hub.mqttPort, 1500*time.Millisecond, mode)
			cfg.Idle = 4 * time.Second
			var progress []string
			cfg.Progress = func(l string) { progress = append(progress, l) }
			rep := run(t, cfg)
			s := step(t, rep, probe.StepKeepAlive, hostPort(cfg.MQTTPort))
			k := s.KeepAlive
			wantHow := map[string]string{"close": "closed", "reset": "reset"}[mode]
			if s.Status != probe.Fail || k.How != wantHow || k.Transport != "mqtt-tls" {
				t.Fatalf("%s how %q: %q", s.Status, k.How, s.Summary)
			}
			if k.DiedAfterSeconds < 1.4 || k.DiedAfterSeconds > 3 || len(k.Rounds) != 1 {
				t.Errorf("died after %.2fs in %d rounds, want about 1.5s in one", k.DiedAfterSeconds, len(k.Rounds))
			}
			if k.SuggestedKeepAliveSeconds != 1 || !strings.Contains(s.Hint, "keep-alive of at most 1s") {
				t.Errorf("suggested %ds: %q", k.SuggestedKeepAliveSeconds, s.Hint)
			}
			if len(progress) < 2 || !strings.Contains(progress[0], "round 1") {
				t.Errorf("progress %q", progress)
			}
			if rep.ExitStatus != 17 {
				t.Errorf("exit %d", rep.ExitStatus)
			}
		})
	}
}

// TestKeepAliveSilentDrop: a relay that forgets flows idle for 700 ms
// without telling anyone; the probe narrows the limit down.
func TestKeepAliveSilentDrop(t *testing.T) {
	_, cs := newDevice(t, registry.Enabled)
	cfg := config(cs)
	cfg.MQTTPort = idleRelay(t, hub.mqttPort, 700*time.Millisecond, "silent")
	cfg.Idle = 2 * time.Second
	cfg.Timeout = 800 * time.Millisecond
	rep := run(t, cfg)
	s := step(t, rep, probe.StepKeepAlive, "")
	k := s.KeepAlive
	if s.Status != probe.Fail || k.How != "dead" || k.Rounds[0].Outcome != "dead" || len(k.Rounds) < 2 {
		t.Fatalf("%s how %q rounds %+v: %q", s.Status, k.How, k.Rounds, s.Summary)
	}
	if k.DiedAfterSeconds > 2 || k.SurvivedSeconds >= k.DiedAfterSeconds || !strings.Contains(s.Summary, "silently") {
		t.Errorf("survived %.2fs, died after %.2fs: %q", k.SurvivedSeconds, k.DiedAfterSeconds, s.Summary)
	}
}

func TestKeepAliveSurvives(t *testing.T) {
	_, cs := newDevice(t, registry.Enabled)
	cfg := config(cs)
	cfg.Idle = 1500 * time.Millisecond
	rep := run(t, cfg)
	s := step(t, rep, probe.StepKeepAlive, "")
	if s.Status != probe.Pass || s.KeepAlive.SurvivedSeconds != 1.5 || s.KeepAlive.Rounds[0].Outcome != "alive" || rep.ExitStatus != 0 {
		t.Fatalf("%s %+v: %q", s.Status, s.KeepAlive, s.Summary)
	}
}

// TestHTTPSPortWithoutWebSockets: the HTTPS port is a web server, not a
// hub: the clock still reads its Date, the WebSocket upgrade fails with
// the HTTP status named.
func TestHTTPSPortWithoutWebSockets(t *testing.T) {
	ca := newCA(t, "Web CA")
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.issue(t, []string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(24*90*time.Hour))}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, cs := newDevice(t, registry.Enabled)
	cfg := config(cs)
	cfg.HTTPSPort = portOf(srv.Listener.Addr().String())
	cfg.CAPEM = append(append([]byte{}, hub.ca...), ca.pem...)
	rep := run(t, cfg)
	if c := step(t, rep, probe.StepClock, ""); c.Status != probe.Pass {
		t.Errorf("clock: %s", c.Summary)
	}
	ws := step(t, rep, probe.StepWebSocket, "")
	if ws.Status != probe.Fail || !strings.Contains(ws.Summary, "HTTP 404") || !strings.Contains(ws.Hint, "--https-port") {
		t.Fatalf("%s %q %q", ws.Status, ws.Summary, ws.Hint)
	}
	if rep.ExitStatus != 16 || !strings.Contains(rep.Conclusion, "MQTT over TLS on port") {
		t.Errorf("exit %d: %q", rep.ExitStatus, rep.Conclusion)
	}
}
