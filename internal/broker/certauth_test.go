package broker

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/x509auth"
)

// x509Hub is a TLS hub that requests client certificates, with devices
// "ss…" (selfSigned, thumbprint of ssCert), "ca…" (certificateAuthority,
// verified CA ca; "caoff…" disabled), "pending…" (CA device whose CA is
// unverified), and the harness's SAS devices "d…".
type x509Hub struct {
	*testHub
	ca, pending certs.Issuer
	ssCert      certs.Issued
}

func startX509Hub(t *testing.T) *x509Hub {
	t.Helper()
	from, until := time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	x := &x509Hub{}
	var err error
	if x.ca, err = certs.NewCA("fleet CA", from, until); err != nil {
		t.Fatal(err)
	}
	if x.pending, err = certs.NewCA("pending CA", from, until); err != nil {
		t.Fatal(err)
	}
	if x.ssCert, err = certs.SelfSigned("ss1", from, until); err != nil {
		t.Fatal(err)
	}
	_, print256 := x509auth.Thumbprints(x.ssCert.Cert)
	auth := x509auth.NewAuthorities([]x509auth.Authority{{Name: "fleet", Cert: x.ca.Cert, Verified: true}, {Name: "pending", Cert: x.pending.Cert}})
	x.testHub = startTestHub(t, withTLS, func(h *testHub, o *Options) {
		o.TLS.ClientAuth = tls.RequestClientCert
		sas := o.Devices
		o.Authorities = func() *x509auth.Authorities { return auth }
		o.Devices = func(id string) (Credentials, bool) {
			switch {
			case strings.HasPrefix(id, "ss"):
				return Credentials{Type: authSelfSigned, Thumbprints: [2]string{"", print256}, Enabled: true}, true
			case strings.HasPrefix(id, "caoff"):
				return Credentials{Type: authCA}, true
			case strings.HasPrefix(id, "ca"), strings.HasPrefix(id, "pending"):
				return Credentials{Type: authCA, Enabled: true}, true
			}
			return sas(id)
		}
	})
	return x
}

// connectCert connects device over MQTT/TLS with cert (nil: none) and
// password, returning the CONNACK code.
func (x *x509Hub) connectCert(device string, version byte, cert *certs.Issued, password string, extra ...certs.Issuer) (*client, byte) {
	x.t.Helper()
	conf := &tls.Config{InsecureSkipVerify: true} // the test's own dev certificate
	if cert != nil {
		tc := cert.TLS()
		for _, e := range extra {
			tc.Certificate = append(tc.Certificate, e.Cert.Raw)
		}
		conf.Certificates = []tls.Certificate{tc}
	}
	c, err := tls.Dial("tcp", x.b.TLSAddr(), conf)
	if err != nil {
		x.t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	x.t.Cleanup(func() { c.Close() })
	cl := newClient(x.t, c)
	cl.version = version
	cl.send(connectPacket(version, device, username(device), password, 60, false))
	p := cl.read()
	if p.FixedHeader.Type != packets.Connack {
		x.t.Fatalf("want CONNACK, got %s", packets.PacketNames[p.FixedHeader.Type])
	}
	return cl, p.ReasonCode
}

func (x *x509Hub) leaf(is certs.Issuer, cn string, from, until time.Time) *certs.Issued {
	x.t.Helper()
	c, err := is.Leaf(cn, from, until)
	if err != nil {
		x.t.Fatal(err)
	}
	return &c
}

func TestX509Accepted(t *testing.T) {
	x := startX509Hub(t)
	now := time.Now()
	inter, err := x.ca.Intermediate("line 3", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		device, authType string
		cert             *certs.Issued
		extra            []certs.Issuer
	}{
		{"ss1", "selfSigned", &x.ssCert, nil},
		{"ca1", "certificateAuthority", x.leaf(x.ca, "ca1", now.Add(-time.Hour), now.Add(time.Hour)), nil},
		{"ca2", "certificateAuthority", x.leaf(inter, "ca2", now.Add(-time.Hour), now.Add(time.Hour)), []certs.Issuer{inter}},
	} {
		cl, code := x.connectCert(c.device, 4, c.cert, "", c.extra...)
		if code != 0 {
			t.Fatalf("%s: CONNACK %d", c.device, code)
		}
		ev := x.waitEvents(c.device, 1)[0]
		if ev.Kind != presence.Connected || ev.AuthType != c.authType || !ev.TokenExpiry.IsZero() {
			t.Fatalf("%s: %+v", c.device, ev)
		}
		cl.send(publishPacket("devices/"+c.device+"/messages/events/", 1, 1, []byte("hi")))
		if p := cl.read(); p.FixedHeader.Type != packets.Puback {
			t.Fatalf("%s: %s instead of PUBACK", c.device, packets.PacketNames[p.FixedHeader.Type])
		}
		cl.send(disconnectV3)
		cl.waitClosed()
		if evs := x.waitEvents(c.device, 2); evs[1].Reason != presence.ReasonClient {
			t.Fatalf("%s ended %s", c.device, evs[1].Reason)
		}
	}
	// A SAS device on the same port still connects with its token, with
	// or without a certificate.
	if _, code := x.connectCert("d1", 4, nil, token(t, "d1")); code != 0 {
		t.Fatalf("SAS device: CONNACK %d", code)
	}
	if _, code := x.connectCert("d2", 4, &x.ssCert, token(t, "d2")); code != 0 {
		t.Fatalf("SAS device with a stray certificate: CONNACK %d", code)
	}
}

// Every X.509 refusal: its CONNACK (3.1.1 and 5), its typed cause and
// the authType and error detail its record carries.
func TestX509Refusals(t *testing.T) {
	x := startX509Hub(t)
	now := time.Now()
	valid := func(is certs.Issuer, cn string) *certs.Issued {
		return x.leaf(is, cn, now.Add(-time.Hour), now.Add(time.Hour))
	}
	expired := x.leaf(x.ca, "ca-expired", now.Add(-48*time.Hour), now.Add(-time.Hour))
	early := x.leaf(x.ca, "ca-early", now.Add(time.Hour), now.Add(48*time.Hour))
	stranger, err := certs.NewCA("stranger", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherSelf, err := certs.SelfSigned("ss-other", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	oldSelf, err := certs.SelfSigned("ss-old", now.Add(-48*time.Hour), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, device string
		cert         *certs.Issued
		password     string
		v5           byte
		failure      presence.AuthFailure
		authType     string
		detail       string
	}{
		{"no certificate", "ca-none", nil, "", 0x86, presence.AuthNoCertificate, "certificateAuthority", "no client certificate"},
		{"expired", "ca-expired", expired, "", 0x86, presence.AuthCertificateExpired, "certificateAuthority", "expired at"},
		{"not yet valid", "ca-early", early, "", 0x86, presence.AuthCertificateExpired, "certificateAuthority", "not valid before"},
		{"wrong thumbprint", "ss-wrong", &otherSelf, "", 0x86, presence.AuthThumbprintMismatch, "selfSigned", "Thumbprint does not match configuration"},
		{"expired self-signed", "ss-old", &oldSelf, "", 0x86, presence.AuthCertificateExpired, "selfSigned", "expired at"},
		{"unknown CA", "ca-stranger", valid(stranger, "ca-stranger"), "", 0x86, presence.AuthUnknownCA, "certificateAuthority", "does not chain to a CA registered"},
		{"unverified CA", "pending1", valid(x.pending, "pending1"), "", 0x86, presence.AuthUnverifiedCA, "certificateAuthority", "CA 'pending', which is registered but not verified"},
		{"CN is not the device id", "ca-cn", valid(x.ca, "someone-else"), "", 0x87, presence.AuthCNMismatch, "certificateAuthority", `subject CN is "someone-else"`},
		{"SAS device with only a certificate", "d-cert", valid(x.ca, "d-cert"), "", 0x86, presence.AuthSASDeviceCertificate, "sas", "presented only a client certificate"},
		{"X.509 device with a SAS token", "ca-token", nil, "TOKEN", 0x86, presence.AuthX509DeviceToken, "certificateAuthority", "not a SAS token"},
		{"disabled CA device", "caoff1", valid(x.ca, "caoff1"), "", 0x87, presence.AuthDeviceDisabled, "certificateAuthority", "is disabled"},
		{"unknown device", "nobody", valid(x.ca, "nobody"), "", 0x87, presence.AuthDeviceNotFound, "", "does not contain the specified device"},
		{"SAS device without anything", "d-bare", nil, "", 0x86, presence.AuthNoToken, "", "no password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, version := range []byte{4, 5} {
				device := c.device
				password := c.password
				if password == "TOKEN" {
					password = token(t, device)
				}
				before := len(x.events(device))
				cl, code := x.connectCert(device, version, c.cert, password)
				want := byte(5) // 3.1.1: not authorized, as IoT Hub answers every authentication refusal
				if version == 5 {
					want = c.v5
				}
				if code != want {
					t.Fatalf("MQTT %d: CONNACK 0x%02x, want 0x%02x", version, code, want)
				}
				cl.waitClosed()
				ev := x.waitEvents(device, before+1)[before]
				if ev.Kind != presence.Refused || ev.Reason != presence.ReasonAuthFailed || ev.Result != presence.ResultUnauthorized ||
					ev.AuthFailure != c.failure || ev.AuthType != c.authType || !strings.Contains(ev.Detail, c.detail) {
					t.Fatalf("MQTT %d: %+v; want %s, authType %q, detail with %q", version, ev, c.failure, c.authType, c.detail)
				}
			}
		})
	}
}

// The typed causes of x509auth map one to one onto presence's.
func TestX509FailuresAreAuthFailures(t *testing.T) {
	for f, want := range map[x509auth.Failure]presence.AuthFailure{
		x509auth.NoCertificate: presence.AuthNoCertificate, x509auth.Expired: presence.AuthCertificateExpired,
		x509auth.ThumbprintMismatch: presence.AuthThumbprintMismatch, x509auth.UnknownCA: presence.AuthUnknownCA,
		x509auth.UnverifiedCA: presence.AuthUnverifiedCA, x509auth.CNMismatch: presence.AuthCNMismatch,
	} {
		if presence.AuthFailure(f) != want {
			t.Errorf("x509auth.%s is %q, presence's %q", f, f, want)
		}
	}
}
