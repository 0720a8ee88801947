package app_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/connlog"
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

// Every X.509 refusal end to end: CONNACK 5, a Connections record whose
// authType and errorMessage say which, and deviceAuthFailures by Reason.
func TestX509RefusalsLogged(t *testing.T) {
	start := time.Now()
	h := startHub(t)
	now := time.Now()
	from, until := now.Add(-time.Hour), now.Add(24*time.Hour)
	ca, _ := certs.NewCA("fleet CA", from, until)
	pending, _ := certs.NewCA("pending CA", from, until)
	stranger, _ := certs.NewCA("stranger", from, until)
	reg := h.Registry()
	ctx := context.Background()
	if _, err := reg.AddCA(ctx, "fleet", []byte(x509auth.EncodePEM(ca.Cert)), true); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AddCA(ctx, "pending", []byte(x509auth.EncodePEM(pending.Cert)), false); err != nil {
		t.Fatal(err)
	}
	self, _ := certs.SelfSigned("ss", from, until)
	_, print256 := x509auth.Thumbprints(self.Cert)
	other, _ := certs.SelfSigned("ss", from, until)
	oldSelf, _ := certs.SelfSigned("ss", from.Add(-48*time.Hour), from)
	for _, d := range []registry.Device{
		{DeviceID: "ss", Authentication: registry.Authentication{Type: "selfSigned", X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: &print256}}},
		{DeviceID: "cadev", Authentication: registry.Authentication{Type: "certificateAuthority"}},
		{DeviceID: "sasdev"},
	} {
		if _, err := reg.Create(ctx, d, "test"); err != nil {
			t.Fatal(err)
		}
	}
	leaf := func(is certs.Issuer, cn string, nb, na time.Time) *certs.Issued {
		c, err := is.Leaf(cn, nb, na)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	cases := []struct {
		name, device string
		cert         *certs.Issued
		reason       string // deviceAuthFailures Reason and the record's reason
		authType     string
		msg          string
	}{
		{"no certificate", "cadev", nil, "no-certificate", `"type":"certificateAuthority"`, "no client certificate"},
		{"expired", "cadev", leaf(ca, "cadev", from.Add(-48*time.Hour), from), "certificate-expired", `"type":"certificateAuthority"`, "expired at"},
		{"not yet valid", "cadev", leaf(ca, "cadev", until, until.Add(time.Hour)), "certificate-expired", `"type":"certificateAuthority"`, "not valid before"},
		{"expired self-signed", "ss", &oldSelf, "certificate-expired", `"type":"selfSigned"`, "expired at"},
		{"wrong thumbprint", "ss", &other, "thumbprint-mismatch", `"type":"selfSigned"`, "Thumbprint does not match configuration"},
		{"unknown CA", "cadev", leaf(stranger, "cadev", from, until), "ca-unknown", `"type":"certificateAuthority"`, "does not chain to a CA registered"},
		{"unverified CA", "cadev", leaf(pending, "cadev", from, until), "ca-unverified", `"type":"certificateAuthority"`, "registered but not verified"},
		{"CN is another device", "cadev", leaf(ca, "sasdev", from, until), "cn-mismatch", `"type":"certificateAuthority"`, `subject CN is "sasdev"`},
		{"SAS device with only a certificate", "sasdev", leaf(ca, "sasdev", from, until), "sas-device-certificate", `"type":"sas"`, "presented only a client certificate"},
	}
	for _, c := range cases {
		before := len(h.events.forDevice(c.device))
		if cl, rc := h.certClient(c.device, c.cert, false); rc != 5 || cl != nil {
			t.Fatalf("%s: CONNACK %d", c.name, rc)
		}
		recs := h.waitLogs(c.device, before+1)
		var rec *connlog.Record
		for i := range recs {
			p := props(t, recs[i])
			if recs[i].ResultType == "401003" && p["reason"] == "auth-failed" && strings.Contains(fmt.Sprint(p["errorMessage"]), c.msg) {
				rec = &recs[i]
				if !strings.Contains(fmt.Sprint(p["authType"]), c.authType) || recs[i].OperationName != "deviceConnect" {
					t.Fatalf("%s: record %+v", c.name, p)
				}
			}
		}
		if rec == nil {
			t.Fatalf("%s: no record with %q among %d", c.name, c.msg, len(recs))
		}
	}
	want := map[string]float64{}
	for _, c := range cases {
		want[c.reason]++
	}
	eventually(t, 10*time.Second, func() error {
		got := h.metricTotal("deviceAuthFailures", start.Add(-time.Second), "Reason")
		for reason, n := range want {
			if got[reason] != n {
				return fmt.Errorf("deviceAuthFailures{Reason=%s} = %v, want %v (all: %v)", reason, got[reason], n, got)
			}
		}
		return nil
	})
}
