package probe_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/probe"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// TestSkewedClock: a device clock 10 minutes behind signs tokens the hub
// finds expired; 10 minutes ahead, the tokens work but the clock fails.
func TestSkewedClock(t *testing.T) {
	for _, c := range []struct {
		name     string
		skew     time.Duration
		words    string
		mqttPass bool
	}{
		{"behind", -10 * time.Minute, "behind the hub's", false},
		{"ahead", 10 * time.Minute, "ahead of the hub's", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, cs := newDevice(t, registry.Enabled)
			cfg := config(cs)
			cfg.Now = func() time.Time { return time.Now().Add(c.skew) }
			rep := run(t, cfg)
			s := step(t, rep, probe.StepClock, "")
			// The hub's Date has second resolution and the round trip adds
			// its own share under load: the figure is checked by SkewSeconds
			// below, the words here.
			if s.Status != probe.Fail || !strings.Contains(s.Summary, c.words) || !strings.Contains(s.Summary, "10m") || !strings.Contains(s.Hint, "NTP") {
				t.Fatalf("clock: %s %q %q", s.Status, s.Summary, s.Hint)
			}
			if got := s.Clock.SkewSeconds; got < c.skew.Seconds()-3 || got > c.skew.Seconds()+3 {
				t.Errorf("skew %.1fs, want about %.0fs", got, c.skew.Seconds())
			}
			m := step(t, rep, probe.StepMQTT, "")
			if (m.Status == probe.Pass) != c.mqttPass {
				t.Fatalf("mqtt: %s %s", m.Status, m.Summary)
			}
			if !c.mqttPass && (!strings.Contains(m.Summary, "expired by the hub's clock") || *m.MQTT.ReturnCode != 5) {
				t.Errorf("mqtt refusal not put down to the clock: %q", m.Summary)
			}
			if rep.ExitStatus != 14 {
				t.Errorf("exit %d", rep.ExitStatus)
			}
		})
	}
}

// TestRefusals: the CONNACK explained in IoT Hub's words, told apart by
// the MQTT 5 follow-up.
func TestRefusals(t *testing.T) {
	_, good := newDevice(t, registry.Enabled)
	wrongKey, _ := sas.ParseConnectionString(good)
	wrongKey.SharedAccessKey = key32
	_, disabled := newDevice(t, registry.Disabled)
	unknown := sas.ConnectionString{HostName: "localhost", DeviceID: "no-such-device", SharedAccessKey: key32}
	cases := []struct {
		name, cs string
		reason5  int
		words    string
	}{
		{"wrong key", wrongKey.String(), 0x86, "key in the connection string is not this device's"},
		{"disabled", disabled, 0x87, "disabled"},
		{"unknown device", unknown.String(), 0x87, "no such device"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := run(t, config(c.cs))
			for _, n := range []int{probe.StepMQTT, probe.StepWebSocket} {
				s := step(t, rep, n, "")
				m := s.MQTT
				if s.Status != probe.Fail || m.ReturnCode == nil || *m.ReturnCode != 5 || m.ReturnCodeText != "not authorized" {
					t.Fatalf("step %d: %s %+v", n, s.Status, m)
				}
				if m.MQTT5 == nil || m.MQTT5.ReasonCode == nil || *m.MQTT5.ReasonCode != c.reason5 {
					t.Fatalf("step %d: MQTT 5 follow-up %+v", n, m.MQTT5)
				}
				if !strings.Contains(s.Summary, c.words) || s.Hint == "" {
					t.Errorf("step %d: %q (hint %q)", n, s.Summary, s.Hint)
				}
			}
			if rep.ExitStatus != 15 || !strings.Contains(rep.Conclusion, "cannot connect") {
				t.Errorf("exit %d, %q", rep.ExitStatus, rep.Conclusion)
			}
		})
	}
}

// TestExpiredFixedToken: a connection string carrying its own token.
func TestExpiredFixedToken(t *testing.T) {
	id, cs := newDevice(t, registry.Enabled)
	parsed, _ := sas.ParseConnectionString(cs)
	tok, err := sas.Sign(sas.DeviceResource("localhost", id), parsed.SharedAccessKey, "", time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, config(sas.ConnectionString{HostName: "localhost", DeviceID: id, SharedAccessSignature: tok}.String()))
	s := step(t, rep, probe.StepMQTT, "")
	if s.Status != probe.Fail || !strings.Contains(s.Summary, "SharedAccessSignature expired") {
		t.Fatalf("%s %q", s.Status, s.Summary)
	}
}
