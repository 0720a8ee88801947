package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/x509auth"
)

// TestX509SDK: the official service SDK creates a self-signed and a
// CA-signed device; the official device SDK connects with each one's
// certificate (connection string x509=true and the SDK's cert/key
// options) over MQTT, and the CA-signed one over MQTT over WebSockets
// too, and sends telemetry; with a wrong certificate it is refused, and
// the Connections log says why.
func TestX509SDK(t *testing.T) {
	t.Parallel()
	requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	a := startHub(ctx, t)
	dir := t.TempDir()
	from, until := time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// The fleet CA, registered and verified by proof of possession.
	ca, err := certs.NewCA("interop fleet CA", from, until)
	if err != nil {
		t.Fatal(err)
	}
	reg := a.Registry()
	added, err := reg.AddCA(ctx, "interop", []byte(x509auth.EncodePEM(ca.Cert)), false)
	if err != nil {
		t.Fatal(err)
	}
	withCode, err := reg.VerificationCode(ctx, "interop", added.ETag)
	if err != nil {
		t.Fatal(err)
	}
	proof, _ := ca.Leaf(withCode.Properties.VerificationCode, from, until)
	if _, err := reg.VerifyCA(ctx, "interop", withCode.ETag, proof.CertPEM); err != nil {
		t.Fatal(err)
	}

	self, err := certs.SelfSigned("x509-ss", from, until)
	if err != nil {
		t.Fatal(err)
	}
	sha1Print, _ := x509auth.Thumbprints(self.Cert)
	signed, err := ca.Leaf("x509-ca", from, until)
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := certs.SelfSigned("x509-ss", from, until)

	s := startScript(ctx, t, "x509.js", map[string]string{
		"MODE": "service", "CONNECTION_STRING": a.OwnerConnectionString(), "PORT": portOf(t, a.HTTPSAddr()),
		"CA_FILE": a.CAFile(), "SS_DEVICE": "x509-ss", "SS_THUMBPRINT": sha1Print, "CA_DEVICE": "x509-ca",
	})
	for _, id := range []string{"x509-ss", "x509-ca"} {
		if e := s.next(ctx, t, "created "+id); e.str("event") != "created" || e.str("deviceId") != id {
			t.Fatalf("want created %s, got %v", id, e)
		}
	}
	s.next(ctx, t, "done")
	s.wait(ctx, t)

	run := func(id string, cert certs.Issued, transport string, refused bool) event {
		t.Helper()
		port := portOf(t, a.MQTTAddr())
		if transport == "mqttws" {
			port = portOf(t, a.HTTPSAddr())
		}
		env := map[string]string{
			"MODE": "device", "CONNECTION_STRING": "HostName=localhost;DeviceId=" + id + ";x509=true",
			"PORT": port, "CA_FILE": a.CAFile(), "TRANSPORT": transport,
			"CERT_FILE": write(id+"-"+transport+".pem", cert.CertPEM), "KEY_FILE": write(id+"-"+transport+"-key.pem", cert.KeyPEM),
		}
		if refused {
			env["EXPECT_REFUSED"] = "1"
		}
		d := startScript(ctx, t, "x509.js", env)
		var last event
		for e := range d.Events {
			if e.str("event") == "error" {
				t.Fatalf("%s over %s: %s\n%s", id, transport, e.str("message"), d.diag())
			}
			last = e
		}
		d.wait(ctx, t)
		return last
	}
	for _, c := range []struct {
		id, transport string
		cert          certs.Issued
	}{{"x509-ss", "mqtt", self}, {"x509-ca", "mqtt", signed}, {"x509-ca", "mqttws", signed}} {
		if e := run(c.id, c.cert, c.transport, false); e.str("event") != "closed" {
			t.Fatalf("%s over %s ended with %v", c.id, c.transport, e)
		}
	}
	if e := run("x509-ss", wrong, "mqtt", true); e.str("event") != "refused" {
		t.Fatalf("a wrong certificate: %v", e)
	}

	// The log: X.509 connects with their authType, the refusal with why.
	eventually(ctx, t, 15*time.Second, "the Connections log", func() error {
		recs, err := a.Logs().Find(ctx, connlog.Filter{Category: "Connections"})
		if err != nil {
			return err
		}
		var connects, refusals int
		for _, r := range recs {
			switch {
			case r.OperationName == "deviceConnect" && r.ResultType == "" && strings.Contains(r.Properties, `\"type\":\"selfSigned\"`) && r.DeviceID == "x509-ss":
				connects++
			case r.OperationName == "deviceConnect" && r.ResultType == "" && strings.Contains(r.Properties, `\"type\":\"certificateAuthority\"`) && r.DeviceID == "x509-ca":
				connects++
			case r.ResultType == "401003" && r.DeviceID == "x509-ss" && strings.Contains(r.Properties, "Thumbprint does not match configuration"):
				refusals++
			}
		}
		if connects != 3 || refusals != 1 {
			return fmt.Errorf("%d X.509 connect records (want 3), %d thumbprint refusals (want 1)", connects, refusals)
		}
		return nil
	})
}
