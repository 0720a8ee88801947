package registry_test

import (
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/x509auth"
)

func fixtureCA(t *testing.T, cn string) certs.Issuer {
	t.Helper()
	ca, err := certs.NewCA(cn, t0.Add(-time.Hour), t0.Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestCALifecycle(t *testing.T) {
	f := newFixture(t)
	ca := fixtureCA(t, "fleet CA")
	dev, err := ca.Leaf("dev1", t0.Add(-time.Hour), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{dev.Cert}
	if _, err := f.reg.Authorities().VerifyDevice(chain, "dev1", t0); err == nil {
		t.Fatal("a device verified before any CA was registered")
	}

	added, err := f.reg.AddCA(ctx, "fleet", []byte(x509auth.EncodePEM(ca.Cert)), false)
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := x509auth.Thumbprints(ca.Cert)
	p := added.Properties
	if added.Name != "fleet" || added.ETag == "" || p.IsVerified || p.Thumbprint != s1 || p.ThumbprintSHA256 != s2 ||
		p.Subject != "CN=fleet CA,O=Tether" || !p.Expiry.Equal(ca.Cert.NotAfter) || !p.Created.Equal(t0) || p.VerificationCode != "" {
		t.Fatalf("added: %+v", added)
	}
	if _, err := f.reg.Authorities().VerifyDevice(chain, "dev1", t0); failureOf(err) != x509auth.UnverifiedCA {
		t.Fatalf("an unverified CA: %v", err)
	}
	_, err = f.reg.AddCA(ctx, "fleet", []byte(x509auth.EncodePEM(fixtureCA(t, "other").Cert)), false)
	wantCode(t, err, registry.CodeCertificateAlreadyExists, http.StatusConflict, registry.ErrExists)
	_, err = f.reg.AddCA(ctx, "again", ca.Cert.Raw, false)
	wantCode(t, err, registry.CodeCertificateAlreadyExists, http.StatusConflict, registry.ErrExists)

	// Proof of possession: a code, then a certificate with it as CN.
	if _, err := f.reg.VerifyCA(ctx, "fleet", "", proofFor(t, ca, "0000")); err == nil {
		t.Fatal("verified without a code")
	}
	f.advance(time.Minute)
	withCode, err := f.reg.VerificationCode(ctx, "fleet", added.ETag)
	if err != nil {
		t.Fatal(err)
	}
	code := withCode.Properties.VerificationCode
	if len(code) != 32 || withCode.ETag == added.ETag || !withCode.Properties.Updated.Equal(t0.Add(time.Minute)) {
		t.Fatalf("with code: %+v", withCode)
	}
	_, err = f.reg.VerificationCode(ctx, "fleet", added.ETag)
	wantCode(t, err, registry.CodePreconditionFailed, http.StatusPreconditionFailed, registry.ErrPreconditionFailed)
	_, err = f.reg.VerifyCA(ctx, "fleet", "", proofFor(t, fixtureCA(t, "impostor"), code))
	wantCode(t, err, registry.CodeVerificationFailed, http.StatusBadRequest, registry.ErrInvalid)
	if !strings.Contains(err.Error(), "not signed by the CA's private key") {
		t.Errorf("forged proof: %v", err)
	}
	_, err = f.reg.VerifyCA(ctx, "fleet", "", []byte("not a certificate"))
	wantCode(t, err, registry.CodeInvalidCertificate, http.StatusBadRequest, registry.ErrInvalid)
	verified, err := f.reg.VerifyCA(ctx, "fleet", withCode.ETag, proofFor(t, ca, code))
	if err != nil {
		t.Fatal(err)
	}
	if !verified.Properties.IsVerified || verified.Properties.VerificationCode != "" {
		t.Fatalf("verified: %+v", verified)
	}
	if name, err := f.reg.Authorities().VerifyDevice(chain, "dev1", t0); err != nil || name != "fleet" {
		t.Fatalf("after verification: %q %v", name, err)
	}

	// A second registry on the same store sees the CA, verified.
	again, err := registry.New(ctx, f.store, registry.Options{HubName: hub, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if list := again.CAs(); len(list) != 1 || !list[0].Properties.IsVerified || list[0].ETag != verified.ETag {
		t.Fatalf("reloaded: %+v", list)
	}
	if _, err := again.Authorities().VerifyDevice(chain, "dev1", t0); err != nil {
		t.Fatalf("reloaded authorities: %v", err)
	}

	err = f.reg.DeleteCA(ctx, "fleet", added.ETag)
	wantCode(t, err, registry.CodePreconditionFailed, http.StatusPreconditionFailed, registry.ErrPreconditionFailed)
	if err := f.reg.DeleteCA(ctx, "fleet", verified.ETag); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Authorities().VerifyDevice(chain, "dev1", t0); failureOf(err) != x509auth.UnknownCA {
		t.Fatalf("after delete: %v", err)
	}
	_, err = f.reg.CA("fleet")
	wantCode(t, err, registry.CodeCertificateNotFound, http.StatusNotFound, registry.ErrNotFound)
	err = f.reg.DeleteCA(ctx, "fleet", "")
	wantCode(t, err, registry.CodeCertificateNotFound, http.StatusNotFound, registry.ErrNotFound)
}

func TestAddCAVerifiedOnUpload(t *testing.T) {
	f := newFixture(t)
	ca := fixtureCA(t, "trusted")
	got, err := f.reg.AddCA(ctx, "trusted", []byte(x509auth.EncodePEM(ca.Cert)), true)
	if err != nil || !got.Properties.IsVerified {
		t.Fatalf("%+v %v", got, err)
	}
	dev, _ := ca.Leaf("d", t0.Add(-time.Hour), t0.Add(time.Hour))
	if _, err := f.reg.Authorities().VerifyDevice([]*x509.Certificate{dev.Cert}, "d", t0); err != nil {
		t.Fatal(err)
	}
}

func TestAddCARefusals(t *testing.T) {
	f := newFixture(t)
	ca := fixtureCA(t, "ca")
	leaf, _ := ca.Leaf("dev1", t0.Add(-time.Hour), t0.Add(time.Hour))
	old, err := certs.NewCA("old", t0.Add(-48*time.Hour), t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		ca, data string
		code     string
		msg      string
	}{
		"bad name":    {"a/b", x509auth.EncodePEM(ca.Cert), registry.CodeArgumentInvalid, "character '/'"},
		"empty name":  {"", x509auth.EncodePEM(ca.Cert), registry.CodeArgumentInvalid, "use 1 to 64"},
		"not a cert":  {"x", "hello", registry.CodeInvalidCertificate, "neither PEM"},
		"a leaf":      {"x", x509auth.EncodePEM(leaf.Cert), registry.CodeInvalidCertificate, "CA:TRUE"},
		"expired":     {"x", x509auth.EncodePEM(old.Cert), registry.CodeInvalidCertificate, "expired at"},
		"private key": {"x", string(leaf.KeyPEM), registry.CodeInvalidCertificate, "never a private key"},
	} {
		_, err := f.reg.AddCA(ctx, c.ca, []byte(c.data), false)
		if err == nil || !strings.Contains(err.Error(), c.code) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want %s saying %q", name, err, c.code, c.msg)
		}
	}
	if len(f.reg.CAs()) != 0 {
		t.Errorf("a refused CA was kept: %+v", f.reg.CAs())
	}
}

func TestX509Devices(t *testing.T) {
	f := newFixture(t)
	print1 := strings.Repeat("ab", 20)
	d, err := f.reg.Create(ctx, registry.Device{DeviceID: "ss", Authentication: registry.Authentication{
		Type: "selfSigned", X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: &print1}}}, "iothubowner")
	if err != nil {
		t.Fatal(err)
	}
	a := d.Authentication
	if a.Type != registry.AuthSelfSigned || *a.X509Thumbprint.PrimaryThumbprint != strings.ToUpper(print1) ||
		a.X509Thumbprint.SecondaryThumbprint != nil || a.SymmetricKey != (registry.SymmetricKey{}) {
		t.Fatalf("selfSigned device: %+v", a)
	}
	// Back to SAS: keys are generated, thumbprints dropped.
	d.Authentication = registry.Authentication{Type: "sas"}
	d, err = f.reg.Replace(ctx, d, "*", "iothubowner")
	if err != nil {
		t.Fatal(err)
	}
	if k := d.Authentication.SymmetricKey; k.PrimaryKey == "" || k.SecondaryKey == "" || d.Authentication.X509Thumbprint.PrimaryThumbprint != nil {
		t.Fatalf("sas again: %+v", d.Authentication)
	}
	// To a CA device: keys go.
	d.Authentication = registry.Authentication{Type: "certificateAuthority"}
	d, err = f.reg.Replace(ctx, d, "*", "iothubowner")
	if err != nil || d.Authentication.Type != registry.AuthCertificateAuthority || d.Authentication.SymmetricKey != (registry.SymmetricKey{}) {
		t.Fatalf("CA device: %+v %v", d.Authentication, err)
	}
	if cached, _ := f.reg.Device("ss"); cached.Authentication.Type != registry.AuthCertificateAuthority {
		t.Fatalf("cache: %+v", cached.Authentication)
	}
}

func failureOf(err error) x509auth.Failure {
	if e, ok := err.(*x509auth.Error); ok {
		return e.Failure
	}
	return ""
}

func proofFor(t *testing.T, ca certs.Issuer, code string) []byte {
	t.Helper()
	p, err := ca.Leaf(code, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return p.CertPEM
}
