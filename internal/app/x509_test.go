package app_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/x509auth"
)

const apiVersion = "?api-version=2021-04-12"

// putDevice creates a device through the registry REST API with body (as
// the azure-iothub SDK sends it) and returns what the hub answered.
func (h *hub) putDevice(id string, body map[string]any) registry.Device {
	h.t.Helper()
	status, out := h.api("PUT", "/devices/"+id+apiVersion, body)
	if status != 200 {
		h.t.Fatalf("PUT /devices/%s: %d %s", id, status, out)
	}
	var d registry.Device
	if err := json.Unmarshal(out, &d); err != nil {
		h.t.Fatal(err)
	}
	return d
}

// certClient connects a paho 3.1.1 client with a client certificate and
// an empty password, over MQTT/TLS or (ws) MQTT over WebSockets.
func (h *hub) certClient(id string, cert *certs.Issued, ws bool) (pahov3.Client, byte) {
	h.t.Helper()
	conf := h.tlsConfig()
	if cert != nil {
		conf.Certificates = []tls.Certificate{cert.TLS()}
	}
	broker := "ssl://" + h.MQTTAddr()
	if ws {
		broker = "wss://" + h.HTTPSAddr() + "/$iothub/websocket"
	}
	return h.v3(id, username(id), "", func(o *pahov3.ClientOptions) {
		o.Servers = nil
		o.AddBroker(broker)
		o.SetTLSConfig(conf)
	})
}

// X.509 end to end: devices registered through the REST API in the
// azure-iothub shapes, a CA registered and verified by proof of
// possession, devices connecting over MQTT/TLS and WebSockets with their
// certificates, and refusals in the Connections log saying which.
func TestX509EndToEnd(t *testing.T) {
	h := startHub(t)
	now := time.Now()
	from, until := now.Add(-time.Hour), now.Add(24*time.Hour)
	self, err := certs.SelfSigned("ss1", from, until)
	if err != nil {
		t.Fatal(err)
	}
	sha1Print, _ := x509auth.Thumbprints(self.Cert)
	colons := strings.ToLower(sha1Print[:2] + ":" + sha1Print[2:])

	// The service SDK leaves type out when it sends thumbprints.
	d := h.putDevice("ss1", map[string]any{"deviceId": "ss1", "authentication": map[string]any{
		"symmetricKey":   map[string]any{"primaryKey": nil, "secondaryKey": nil},
		"x509Thumbprint": map[string]any{"primaryThumbprint": colons, "secondaryThumbprint": nil}}})
	if a := d.Authentication; a.Type != "selfSigned" || *a.X509Thumbprint.PrimaryThumbprint != sha1Print || a.SymmetricKey.PrimaryKey != "" {
		t.Fatalf("selfSigned device: %+v", a)
	}
	h.putDevice("ca1", map[string]any{"deviceId": "ca1", "authentication": map[string]any{"type": "certificateAuthority"}})
	h.putDevice("ca2", map[string]any{"deviceId": "ca2", "authentication": map[string]any{"type": "certificateAuthority"}})
	if status, out := h.api("PUT", "/devices/bad"+apiVersion, map[string]any{"deviceId": "bad",
		"authentication": map[string]any{"type": "selfSigned", "x509Thumbprint": map[string]any{"primaryThumbprint": "1234"}}}); status != 400 || !strings.Contains(string(out), "invalid thumbprint") {
		t.Fatalf("a short thumbprint: %d %s", status, out)
	}

	// The CA: registered, refused until verified, verified by proof.
	ca, err := certs.NewCA("fleet CA", from, until)
	if err != nil {
		t.Fatal(err)
	}
	var got registry.CACertificate
	status, out := h.api("PUT", "/api/v1/certificates/fleet", map[string]any{"properties": map[string]any{"certificate": x509auth.EncodePEM(ca.Cert)}})
	if status != 201 || json.Unmarshal(out, &got) != nil || got.Properties.IsVerified {
		t.Fatalf("register CA: %d %s", status, out)
	}
	caCert, err := ca.Leaf("ca1", from, until)
	if err != nil {
		t.Fatal(err)
	}
	if _, rc := h.certClient("ca1", &caCert, false); rc != 5 {
		t.Fatalf("a device of an unverified CA: CONNACK %d", rc)
	}
	status, out = h.apiRaw("POST", "/api/v1/certificates/fleet/generateVerificationCode", nil, map[string]string{"If-Match": `"` + got.ETag + `"`})
	if status != 200 || json.Unmarshal(out, &got) != nil || got.Properties.VerificationCode == "" {
		t.Fatalf("verification code: %d %s", status, out)
	}
	wrong, _ := ca.Leaf("not-the-code", from, until)
	if status, out := h.api("POST", "/api/v1/certificates/fleet/verify", api.VerificationBody{Certificate: string(wrong.CertPEM)}); status != 400 || !strings.Contains(string(out), "must be the verification code") {
		t.Fatalf("a proof with the wrong CN: %d %s", status, out)
	}
	proof, _ := ca.Leaf(got.Properties.VerificationCode, from, until)
	status, out = h.api("POST", "/api/v1/certificates/fleet/verify", api.VerificationBody{Certificate: string(proof.CertPEM)})
	if status != 200 || json.Unmarshal(out, &got) != nil || !got.Properties.IsVerified {
		t.Fatalf("verify: %d %s", status, out)
	}
	var list api.CertificateList
	if status, out := h.api("GET", "/api/v1/certificates", nil); status != 200 || json.Unmarshal(out, &list) != nil || len(list.Value) != 1 || !list.Value[0].Properties.IsVerified {
		t.Fatalf("list: %d %s", status, out)
	}

	// Connections: self-signed over TLS, CA-signed over TLS and WebSockets.
	for _, c := range []struct {
		id, authType string
		cert         *certs.Issued
		ws           bool
	}{
		{"ss1", "selfSigned", &self, false},
		{"ca1", "certificateAuthority", &caCert, false},
		{"ca2", "certificateAuthority", mustLeaf(t, ca, "ca2"), true},
	} {
		before := len(h.events.forDevice(c.id))
		cl, rc := h.certClient(c.id, c.cert, c.ws)
		if rc != 0 || cl == nil {
			t.Fatalf("%s: CONNACK %d", c.id, rc)
		}
		if tok := cl.Publish("devices/"+c.id+"/messages/events/", 1, false, "hello"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: publish: %v", c.id, tok.Error())
		}
		evs := h.waitEvents(c.id, before+1)
		ev := evs[before]
		wantProto := "MQTT"
		if c.ws {
			wantProto = "MQTT-WS"
		}
		if ev.Kind != presence.Connected || ev.AuthType != c.authType || ev.Protocol != wantProto {
			t.Fatalf("%s: %+v", c.id, ev)
		}
		recs := h.waitLogs(c.id, len(evs))
		last := props(t, recs[len(recs)-1])
		if !strings.Contains(fmt.Sprint(last["authType"]), `"type":"`+c.authType+`"`) {
			t.Fatalf("%s: log authType %v", c.id, last["authType"])
		}
		cl.Disconnect(100)
	}

	// A wrong certificate: refused, logged with authType and the reason.
	other, _ := certs.SelfSigned("ss1", from, until)
	if _, rc := h.certClient("ss1", &other, false); rc != 5 {
		t.Fatalf("wrong thumbprint: CONNACK %d", rc)
	}
	recs := h.waitLogs("ss1", 3)
	rec := recs[len(recs)-1]
	p := props(t, rec)
	if rec.OperationName != "deviceConnect" || rec.Level != "Error" || rec.ResultType != "401003" ||
		!strings.Contains(fmt.Sprint(p["authType"]), `"type":"selfSigned"`) ||
		!strings.Contains(fmt.Sprint(p["errorMessage"]), "Thumbprint does not match configuration") {
		t.Fatalf("refusal record: %+v %v", rec, p)
	}
	if got := h.metricTotal("deviceAuthFailures", now.Add(-time.Second), "Reason"); got["thumbprint-mismatch"] != 1 || got["ca-unverified"] != 1 {
		eventually(t, 5*time.Second, func() error {
			got = h.metricTotal("deviceAuthFailures", now.Add(-time.Second), "Reason")
			if got["thumbprint-mismatch"] != 1 || got["ca-unverified"] != 1 {
				return fmt.Errorf("deviceAuthFailures by reason: %v (connects %v)", got, h.metricTotal("deviceConnects", now.Add(-time.Second), "ResultType"))
			}
			return nil
		})
	}

	// Deleting the CA locks its devices out.
	if status, out := h.apiRaw("DELETE", "/api/v1/certificates/fleet", nil, nil); status != 204 {
		t.Fatalf("delete CA: %d %s", status, out)
	}
	if _, rc := h.certClient("ca1", &caCert, false); rc != 5 {
		t.Fatalf("after the CA was deleted: CONNACK %d", rc)
	}
}

func mustLeaf(t *testing.T, ca certs.Issuer, cn string) *certs.Issued {
	t.Helper()
	c, err := ca.Leaf(cn, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}
