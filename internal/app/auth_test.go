package app_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// v5 connects a paho MQTT 5 client over TLS and returns the CONNACK reason
// code; the connection is closed again.
func (h *hub) v5(clientID, user, pass string) byte {
	h.t.Helper()
	conn, err := tls.Dial("tcp", h.MQTTAddr(), h.tlsConfig())
	if err != nil {
		h.t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{ClientID: clientID, Conn: packets.NewThreadSafeConn(conn)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{
		ClientID: clientID, Username: user, UsernameFlag: true, Password: []byte(pass), PasswordFlag: true, KeepAlive: 30,
	})
	if ca == nil {
		h.t.Fatalf("v5 connect: no CONNACK: %v", err)
	}
	if err == nil {
		_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	}
	return ca.ReasonCode
}

// Each refusal gets IoT Hub's CONNACK (3.1.1 code 5, or 2 for a client id
// that is not the device id; v5 0x86/0x87/0x85), a refused ConnectionEvent
// and a deviceConnect Error record with 401003.
func TestAuthRefusals(t *testing.T) {
	h := startHub(t)
	key := h.device("good")
	h.device("off")
	off, _ := h.Registry().Get(context.Background(), "off")
	off.Status = registry.Disabled
	if _, err := h.Registry().Replace(context.Background(), off, "*", "test"); err != nil {
		t.Fatal(err)
	}
	offKey := off.Authentication.SymmetricKey.PrimaryKey
	other := "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMzI="
	sign := func(resource, k, skn string, ttl time.Duration) string {
		tok, err := sas.Sign(resource, k, skn, time.Now().Add(ttl))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	svc, _ := h.Registry().Policy("service")
	dev, _ := h.Registry().Policy("device")

	cases := []struct {
		name         string
		device       string // whose log gets the record
		clientID     string
		user, pass   string
		v3, v5       byte
		detailSubstr string
	}{
		{"bad signature", "good", "good", username("good"), sign("localhost/devices/good", other, "", time.Hour), 5, 0x86, "signature"},
		{"expired token", "good", "good", username("good"), sign("localhost/devices/good", key, "", -time.Minute), 5, 0x86, "expired"},
		{"sr for another device", "good", "good", username("good"), sign("localhost/devices/off", key, "", time.Hour), 5, 0x87, "token is for"},
		{"sr for another hub", "good", "good", username("good"), sign("elsewhere/devices/good", key, "", time.Hour), 5, 0x87, "token is for"},
		{"username for another hub", "good", "good", "elsewhere/good/?api-version=2021-04-12", h.token("good", key, time.Hour), 5, 0x86, "names hub"},
		{"malformed username", "good", "good", "good", h.token("good", key, time.Hour), 5, 0x86, "malformed MQTT username"},
		{"malformed password", "good", "good", username("good"), "not a token", 5, 0x86, "malformed SAS token"},
		{"unknown device", "ghost", "ghost", username("ghost"), sign("localhost/devices/ghost", key, "", time.Hour), 5, 0x87, "does not contain the specified device"},
		{"disabled device", "off", "off", username("off"), h.token("off", offKey, time.Hour), 5, 0x87, "disabled"},
		{"client id is not the device id", "good", "impostor", username("good"), h.token("good", key, time.Hour), 2, 0x85, "does not match"},
		{"policy without DeviceConnect", "good", "good", username("good"), sign("localhost/devices/good", svc.PrimaryKey, "service", time.Hour), 5, 0x87, "DeviceConnect"},
		{"policy token for another device", "good", "good", username("good"), sign("localhost/devices/off", dev.PrimaryKey, "device", time.Hour), 5, 0x87, "does not cover"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.events.forDevice(tc.device))
			beforeLogs := len(h.waitLogs(tc.device, 0))
			if _, rc := h.v3(tc.clientID, tc.user, tc.pass); rc != tc.v3 {
				t.Errorf("3.1.1 CONNACK = %d, want %d", rc, tc.v3)
			}
			if rc := h.v5(tc.clientID, tc.user, tc.pass); rc != tc.v5 {
				t.Errorf("v5 CONNACK = %#x, want %#x", rc, tc.v5)
			}
			evs := h.waitEvents(tc.device, before+2)[before:]
			for _, ev := range evs {
				if ev.Kind != presence.Refused || ev.Reason != presence.ReasonAuthFailed || ev.Result.Type != "401003" || ev.Sequence != "" {
					t.Errorf("event = %s %s %s seq %q", ev.Kind, ev.Reason, ev.Result.Type, ev.Sequence)
				}
				if !strings.Contains(ev.Detail, tc.detailSubstr) {
					t.Errorf("detail %q does not say %q", ev.Detail, tc.detailSubstr)
				}
			}
			if evs[0].ProtocolVersion != 4 || evs[1].ProtocolVersion != 5 || evs[0].MaskedIP != "127.0.0.XXX" {
				t.Errorf("protocol versions %d,%d ip %q", evs[0].ProtocolVersion, evs[1].ProtocolVersion, evs[0].MaskedIP)
			}
			recs := h.waitLogs(tc.device, beforeLogs+2)[beforeLogs:]
			for _, r := range recs {
				if r.OperationName != "deviceConnect" || r.Level != "Error" || r.ResultType != "401003" || r.ResultDescription != "IoTHubUnauthorized" {
					t.Errorf("record %s %s %s %s", r.OperationName, r.Level, r.ResultType, r.ResultDescription)
				}
				var props map[string]any
				if err := json.Unmarshal([]byte(r.Properties), &props); err != nil {
					t.Fatal(err)
				}
				if props["deviceId"] != tc.device || props["statusCode"] != "401" || props["maskedIpAddress"] != "127.0.0.XXX" ||
					!strings.Contains(props["errorMessage"].(string), tc.detailSubstr) {
					t.Errorf("properties_s = %s", r.Properties)
				}
			}
		})
	}
	// None of that disturbed the registry: the good device still connects.
	if c, rc := h.v3("good", username("good"), h.token("good", key, time.Hour)); rc != 0 || c == nil {
		t.Fatalf("good device refused afterwards: %d", rc)
	}
}

// A token signed with a policy key that grants DeviceConnect (skn present)
// is accepted for any existing device.
func TestPolicyTokenConnects(t *testing.T) {
	h := startHub(t)
	h.device("gw1")
	p, _ := h.Registry().Policy("device")
	tok, _ := sas.Sign("localhost/devices", p.PrimaryKey, "device", time.Now().Add(time.Hour))
	c, rc := h.v3("gw1", username("gw1"), tok)
	if rc != 0 || c == nil {
		t.Fatalf("CONNACK %d", rc)
	}
	evs := h.waitEvents("gw1", 1)
	if evs[0].Kind != presence.Connected || evs[0].AuthType != "policy:device" {
		t.Fatalf("event %+v", evs[0])
	}
}
