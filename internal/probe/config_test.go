package probe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/probe"
)

// TestBadConfig: everything wrong is reported at once, before any network.
func TestBadConfig(t *testing.T) {
	cases := []struct {
		cfg   probe.Config
		words []string
	}{
		{probe.Config{}, []string{"no connection string"}},
		{probe.Config{ConnectionString: "HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=" + key32}, []string{"no DeviceId"}},
		{probe.Config{ConnectionString: "HostName=h;DeviceId=d;x509=true"}, []string{"X.509"}},
		{probe.Config{ConnectionString: "HostName=h;DeviceId=d;SharedAccessKey=not base64!"}, []string{"not base64"}},
		{probe.Config{ConnectionString: "HostName=h:8883;DeviceId=d;SharedAccessKey=" + key32}, []string{"bare host name"}},
		{probe.Config{
			ConnectionString: "HostName=h;DeviceId=d;SharedAccessKey=" + key32,
			Proxy:            "socks5://p:1080", Idle: time.Hour, MQTTPort: 70000, CAPEM: []byte("nothing"), CAName: "--ca x.pem",
		}, []string{"only http://", "at most 29m0s", "mqtt-port 70000", "x.pem holds no PEM"}},
	}
	for _, c := range cases {
		_, err := probe.Run(context.Background(), c.cfg)
		if err == nil {
			t.Errorf("%+v: no error", c.cfg)
			continue
		}
		for _, w := range c.words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q does not say %q", err, w)
			}
		}
	}
}

// TestGatewayHostNamePort: the SDKs dial GatewayHostName, and its port is
// the MQTT port; HostName stays in the username.
func TestGatewayHostNamePort(t *testing.T) {
	_, cs := newDevice(t, "")
	cfg := config(cs + ";GatewayHostName=127.0.0.1:" + itoa(hub.mqttPort))
	cfg.MQTTPort = 0
	rep := run(t, cfg)
	if rep.DialHost != "127.0.0.1" || rep.MQTTPort != hub.mqttPort {
		t.Fatalf("dials %s port %d", rep.DialHost, rep.MQTTPort)
	}
	if d := step(t, rep, probe.StepDNS, ""); d.Status != probe.Pass || !d.DNS.IPLiteral {
		t.Errorf("dns for an IP: %+v", d)
	}
	// The dev certificate has an IP SAN for 127.0.0.1.
	if m := step(t, rep, probe.StepMQTT, ""); m.Status != probe.Pass || !strings.HasPrefix(m.MQTT.Username, "localhost/") {
		t.Errorf("mqtt: %s %s %s", m.Status, m.Summary, m.MQTT.Username)
	}
}
