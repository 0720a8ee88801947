package probe_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/probe"
	"github.com/tether-hub/tether/internal/registry"
)

// TestEveryStepPasses: a good device, both transports, a test message on
// each; the hub stores both messages and logs both connections as a
// probe's.
func TestEveryStepPasses(t *testing.T) {
	id, cs := newDevice(t, registry.Enabled)
	msgs := make(chan *nats.Msg, 4)
	sub, err := hub.app.Journal().NC.ChanSubscribe(journal.TelemetryPrefix+journal.EncodeToken(id), msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	cfg := config(cs)
	cfg.Publish = true
	var live []int
	cfg.OnStep = func(s probe.Step) { live = append(live, s.Number) }
	rep := run(t, cfg)
	if rep.Status != probe.Pass || rep.ExitStatus != 0 || len(rep.Failed) != 0 {
		t.Fatalf("status %s, exit %d, failed %v", rep.Status, rep.ExitStatus, rep.Failed)
	}
	if fmt.Sprint(live) != "[1 2 2 3 3 4 5 6 7]" {
		t.Errorf("OnStep saw steps %v", live)
	}
	for _, s := range rep.Steps[:8] {
		if s.Status != probe.Pass {
			t.Errorf("%s: %s %s", s.Name, s.Status, s.Summary)
		}
	}
	if k := step(t, rep, probe.StepKeepAlive, ""); k.Status != probe.Skip {
		t.Errorf("keepalive without --idle: %s", k.Status)
	}
	tlsStep := step(t, rep, probe.StepTLS, hostPort(hub.mqttPort))
	if tr := tlsStep.TLS; !tr.Verified || !tr.HostnameMatch || tr.SystemTrusted || tr.Version == "" || len(tr.Chain) == 0 || tr.Chain[0].Issuer == "" {
		t.Errorf("TLS result %+v", tr)
	}
	for _, n := range []int{probe.StepMQTT, probe.StepWebSocket} {
		m := step(t, rep, n, "").MQTT
		if m.ReturnCode == nil || *m.ReturnCode != 0 || m.Subscribe == nil || m.Subscribe.ReturnCode != 0 ||
			m.Publish == nil || !m.Publish.Acked || m.Disconnect != "clean" || !strings.Contains(m.Username, "DeviceClientType=tether-probe%2Ftest") {
			t.Errorf("step %d: %+v", n, m)
		}
	}
	if c := step(t, rep, probe.StepClock, "").Clock; c.Source != "https-date" || c.SkewSeconds > 2 || c.SkewSeconds < -2 {
		t.Errorf("clock %+v", c)
	}

	// Both messages reached the journal, marked.
	for range 2 {
		select {
		case m := <-msgs:
			if !strings.Contains(string(m.Data), "tetherProbe") {
				t.Errorf("stored message %s", m.Data)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the hub did not store the probe's telemetry")
		}
	}
	// The Connections log shows two connects by the probe's client type.
	eventually(t, 10*time.Second, func() error {
		recs, err := hub.app.Logs().Find(context.Background(), connlog.Filter{DeviceID: id, Category: "Connections"})
		if err != nil {
			return err
		}
		n := 0
		for _, r := range recs {
			if r.OperationName == "deviceConnect" && r.SDKVersion == "tether-probe/test" && strings.Contains(r.Properties, `"sdkVersion":"tether-probe/test"`) {
				n++
			}
		}
		if n < 2 {
			return fmt.Errorf("%d probe connects in the log (of %d records)", n, len(recs))
		}
		return nil
	})

	// The JSON form round-trips into the documented shape.
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"clientType", "hostName", "deviceId", "dialHost", "mqttPort", "httpsPort", "trust", "started", "steps", "status", "conclusion", "exitStatus"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON report has no %q", k)
		}
	}
}

func TestUnknownHost(t *testing.T) {
	cfg := config("HostName=no-such-hub.invalid;DeviceId=d1;SharedAccessKey=" + key32)
	rep := run(t, cfg)
	s := step(t, rep, probe.StepDNS, "no-such-hub.invalid")
	if s.Status != probe.Fail || !(s.DNS.NotFound || s.DNS.Timeout) || s.Hint == "" {
		t.Fatalf("dns step: %+v %+v", s, s.DNS)
	}
	if rep.ExitStatus != probe.ExitFailedBase+probe.StepDNS {
		t.Errorf("exit %d", rep.ExitStatus)
	}
	for _, later := range rep.Steps[1:] {
		if later.Status != probe.Skip {
			t.Errorf("%s ran after DNS failed: %s", later.Name, later.Summary)
		}
	}
}

// key32 is a well-formed key no device has.
const key32 = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="

func TestClosedPortFallsBackToWebSockets(t *testing.T) {
	_, cs := newDevice(t, registry.Enabled)
	cfg := config(cs)
	cfg.MQTTPort = closedPort(t)
	rep := run(t, cfg)
	s := step(t, rep, probe.StepTCP, hostPort(cfg.MQTTPort))
	if s.Status != probe.Fail || s.TCP.Outcome != probe.Refused || !strings.Contains(s.Summary, "refused") {
		t.Fatalf("tcp step: %s %s %+v", s.Status, s.Summary, s.TCP)
	}
	for _, n := range []int{probe.StepTLS, probe.StepMQTT} {
		if s := step(t, rep, n, hostPort(cfg.MQTTPort)); s.Status != probe.Skip {
			t.Errorf("step %d ran: %s", n, s.Summary)
		}
	}
	if ws := step(t, rep, probe.StepWebSocket, ""); ws.Status != probe.Pass {
		t.Errorf("websocket: %s %s", ws.Status, ws.Summary)
	}
	if rep.ExitStatus != 12 || !strings.Contains(rep.Conclusion, "MQTT over WebSockets on port") {
		t.Errorf("exit %d, conclusion %q", rep.ExitStatus, rep.Conclusion)
	}
}

func TestListenerThatNeverAnswers(t *testing.T) {
	_, cs := newDevice(t, registry.Enabled)
	cfg := config(cs)
	cfg.MQTTPort = stallingPort(t)
	cfg.Timeout = 500 * time.Millisecond
	rep := run(t, cfg)
	if s := step(t, rep, probe.StepTCP, hostPort(cfg.MQTTPort)); s.Status != probe.Pass {
		t.Fatalf("tcp: %s", s.Summary)
	}
	s := step(t, rep, probe.StepTLS, hostPort(cfg.MQTTPort))
	if s.Status != probe.Fail || s.TLS.Problem != "handshake" || !strings.Contains(s.Summary, "no answer") || !strings.Contains(s.Hint, "stalls") {
		t.Fatalf("tls: %s %q %q", s.Status, s.Summary, s.Hint)
	}
	if rep.ExitStatus != 13 {
		t.Errorf("exit %d", rep.ExitStatus)
	}
}

func TestTLSProblems(t *testing.T) {
	ours := newCA(t, "Hub CA")
	other := newCA(t, "Inspecting Firewall CA")
	now := time.Now()
	cases := []struct{ name, problem, words string }{
		{"another CA", "untrusted", `issued by "Inspecting Firewall CA"`},
		{"expired", "expired", "expired on"},
		{"not yet valid", "not-yet-valid", "not valid before"},
		{"other name", "hostname", "is for other.example, not localhost"},
	}
	certs := map[string]func() int{
		"another CA": func() int {
			return tlsPort(t, other.issue(t, []string{"localhost"}, now.Add(-time.Hour), now.Add(time.Hour*24*90)))
		},
		"expired": func() int {
			return tlsPort(t, ours.issue(t, []string{"localhost"}, now.Add(-48*time.Hour), now.Add(-time.Hour)))
		},
		"not yet valid": func() int {
			return tlsPort(t, ours.issue(t, []string{"localhost"}, now.Add(time.Hour), now.Add(48*time.Hour)))
		},
		"other name": func() int {
			return tlsPort(t, ours.issue(t, []string{"other.example"}, now.Add(-time.Hour), now.Add(24*90*time.Hour)))
		},
	}
	_, cs := newDevice(t, registry.Enabled)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(cs)
			cfg.MQTTPort = certs[c.name]()
			cfg.CAPEM = append(append([]byte{}, ours.pem...), hub.ca...)
			rep := run(t, cfg)
			s := step(t, rep, probe.StepTLS, hostPort(cfg.MQTTPort))
			if s.Status != probe.Fail || s.TLS.Problem != c.problem || !strings.Contains(s.Summary, c.words) || s.Hint == "" {
				t.Fatalf("%s: %s problem %q: %q (hint %q)", c.name, s.Status, s.TLS.Problem, s.Summary, s.Hint)
			}
			if c.problem == "untrusted" && !s.TLS.InterceptionSuspected {
				t.Errorf("an unknown issuer with --ca given must raise interception")
			}
			if m := step(t, rep, probe.StepMQTT, ""); m.Status != probe.Skip {
				t.Errorf("mqtt ran over a bad certificate: %s", m.Summary)
			}
			// The HTTPS port is the real hub: its certificate differs in
			// issuer, which the probe points out (except for the CA's own
			// problems, the issuers of ours and the hub's differ too).
			h := step(t, rep, probe.StepTLS, hostPort(hub.https))
			if h.Status != probe.Warn || len(h.Notes) == 0 || !strings.Contains(h.Notes[0], "intercepted") {
				t.Errorf("https tls: %s %v", h.Status, h.Notes)
			}
			if rep.ExitStatus != 13 {
				t.Errorf("exit %d", rep.ExitStatus)
			}
		})
	}
}

// TestNoCAFile: the hub's private CA is not in the system store.
func TestNoCAFile(t *testing.T) {
	_, cs := newDevice(t, registry.Enabled)
	cfg := config(cs)
	cfg.CAPEM, cfg.CAName = nil, ""
	rep := run(t, cfg)
	s := step(t, rep, probe.StepTLS, hostPort(hub.mqttPort))
	if s.Status != probe.Fail || s.TLS.Problem != "untrusted" || !strings.Contains(s.Hint, "--ca") || rep.Trust != "system" {
		t.Fatalf("%s %q %q", s.Status, s.Summary, s.Hint)
	}
	// The clock needs only TCP: it still reads the hub's time.
	if c := step(t, rep, probe.StepClock, ""); c.Status != probe.Pass || c.Clock.Source != "https-date" {
		t.Errorf("clock: %s %s", c.Status, c.Summary)
	}
}
