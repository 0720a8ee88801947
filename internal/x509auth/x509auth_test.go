package x509auth_test

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/x509auth"
)

var (
	now   = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	from  = now.Add(-24 * time.Hour)
	until = now.Add(365 * 24 * time.Hour)
)

func mustCA(t *testing.T, cn string) certs.Issuer {
	t.Helper()
	ca, err := certs.NewCA(cn, from, until)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func failure(err error) x509auth.Failure {
	var e *x509auth.Error
	if errors.As(err, &e) {
		return e.Failure
	}
	return "not an *Error"
}

func TestParseThumbprint(t *testing.T) {
	sha1 := strings.Repeat("ab", 20)
	sha256 := strings.Repeat("0F", 32)
	for in, want := range map[string]string{
		sha1:                      strings.ToUpper(sha1),
		" " + sha256 + " ":        sha256,
		"AB:CD:" + sha1[4:]:       "ABCD" + strings.ToUpper(sha1[4:]),
		strings.Repeat("ab ", 20): strings.ToUpper(sha1),
	} {
		got, err := x509auth.ParseThumbprint(in)
		if err != nil || got != want {
			t.Errorf("ParseThumbprint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"":                        "empty",
		"AB":                      "has 2 hex digits",
		strings.Repeat("zz", 20):  "not hexadecimal",
		strings.Repeat("ab", 21):  "has 42 hex digits",
		strings.Repeat("ab", 100): "a SHA-1 thumbprint has 40",
	} {
		_, err := x509auth.ParseThumbprint(in)
		if !errors.Is(err, x509auth.ErrThumbprint) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseThumbprint(%q) = %v; want an ErrThumbprint saying %q", in, err, want)
		}
	}
}

func TestVerifySelfSigned(t *testing.T) {
	dev, err := certs.SelfSigned("dev1", from, until)
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := x509auth.Thumbprints(dev.Cert)
	other, _ := certs.SelfSigned("dev1", from, until)
	o1, _ := x509auth.Thumbprints(other.Cert)
	old, _ := certs.SelfSigned("dev1", from.Add(-48*time.Hour), from)
	young, _ := certs.SelfSigned("dev1", now.Add(time.Hour), until)
	oldPrint, _ := x509auth.Thumbprints(old.Cert)
	youngPrint, _ := x509auth.Thumbprints(young.Cert)
	for _, c := range []struct {
		name               string
		cert               *certs.Issued
		primary, secondary string
		want               x509auth.Failure
		detail             string
	}{
		{"primary SHA-1", &dev, s1, "", "", ""},
		{"secondary SHA-256", &dev, o1, s2, "", ""},
		{"neither", &dev, o1, "", x509auth.ThumbprintMismatch, "SHA1Hash=" + s1 + ", SHA2Hash=" + s2 + "; Configuration: PrimaryThumbprint=" + o1 + ", SecondaryThumbprint=null"},
		{"none registered", &dev, "", "", x509auth.ThumbprintMismatch, "PrimaryThumbprint=null"},
		{"expired", &old, oldPrint, "", x509auth.Expired, "expired at"},
		{"not yet valid", &young, youngPrint, "", x509auth.Expired, "not valid before"},
		{"no certificate", nil, s1, "", x509auth.NoCertificate, "no client certificate"},
	} {
		var chain []*x509.Certificate
		if c.cert != nil {
			chain = append(chain, c.cert.Cert)
		}
		err := x509auth.VerifySelfSigned(chain, c.primary, c.secondary, now)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if failure(err) != c.want || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("%s: %v (%s); want %s saying %q", c.name, err, failure(err), c.want, c.detail)
		}
	}
}

func TestVerifyDevice(t *testing.T) {
	root := mustCA(t, "root")
	inter, err := root.Intermediate("intermediate", from, until)
	if err != nil {
		t.Fatal(err)
	}
	pending := mustCA(t, "pending")
	stranger := mustCA(t, "stranger")
	auth := x509auth.NewAuthorities([]x509auth.Authority{
		{Name: "root-ca", Cert: root.Cert, Verified: true},
		{Name: "pending-ca", Cert: pending.Cert},
	})
	leaf := func(is certs.Issuer, cn string, nb, na time.Time) *x509.Certificate {
		t.Helper()
		i, err := is.Leaf(cn, nb, na)
		if err != nil {
			t.Fatal(err)
		}
		return i.Cert
	}
	oldInter, _ := root.Intermediate("old intermediate", from.Add(-48*time.Hour), from)
	for _, c := range []struct {
		name   string
		chain  []*x509.Certificate
		want   x509auth.Failure
		detail string
	}{
		{"direct", []*x509.Certificate{leaf(root, "dev1", from, until)}, "", ""},
		{"through an intermediate", []*x509.Certificate{leaf(inter, "dev1", from, until), inter.Cert}, "", ""},
		{"intermediate not sent", []*x509.Certificate{leaf(inter, "dev1", from, until)}, x509auth.UnknownCA, "issuer CN=intermediate"},
		{"unverified CA", []*x509.Certificate{leaf(pending, "dev1", from, until)}, x509auth.UnverifiedCA, "CA 'pending-ca', which is registered but not verified"},
		{"unknown CA", []*x509.Certificate{leaf(stranger, "dev1", from, until)}, x509auth.UnknownCA, "does not chain to a CA registered"},
		{"CN is another device", []*x509.Certificate{leaf(root, "dev2", from, until)}, x509auth.CNMismatch, `subject CN is "dev2", not the device id "dev1"`},
		{"expired leaf", []*x509.Certificate{leaf(root, "dev1", from.Add(-48*time.Hour), from)}, x509auth.Expired, "expired at"},
		{"expired intermediate", []*x509.Certificate{leaf(oldInter, "dev1", from, until), oldInter.Cert}, x509auth.Expired, "validity period"},
		{"no certificate", nil, x509auth.NoCertificate, "no client certificate"},
	} {
		ca, err := auth.VerifyDevice(c.chain, "dev1", now)
		if c.want == "" {
			if err != nil || ca != "root-ca" {
				t.Errorf("%s: CA %q, %v", c.name, ca, err)
			}
			continue
		}
		if failure(err) != c.want || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("%s: %v (%s); want %s saying %q", c.name, err, failure(err), c.want, c.detail)
		}
	}
	var none *x509auth.Authorities
	if _, err := none.VerifyDevice([]*x509.Certificate{leaf(root, "dev1", from, until)}, "dev1", now); failure(err) != x509auth.UnknownCA {
		t.Errorf("no CAs: %v", err)
	}
}

func TestProofOfPossession(t *testing.T) {
	ca := mustCA(t, "ca")
	other := mustCA(t, "other")
	code := x509auth.NewVerificationCode()
	if len(code) != 32 || strings.ToUpper(code) != code || code == x509auth.NewVerificationCode() {
		t.Fatalf("verification code %q", code)
	}
	proof, _ := ca.Leaf(code, from, until)
	if err := x509auth.CheckProof(ca.Cert, proof.Cert, code, now); err != nil {
		t.Fatal(err)
	}
	lower, _ := ca.Leaf(strings.ToLower(code), from, until)
	if err := x509auth.CheckProof(ca.Cert, lower.Cert, code, now); err != nil {
		t.Errorf("a lower-case CN: %v", err)
	}
	forged, _ := other.Leaf(code, from, until)
	wrongCN, _ := ca.Leaf("dev1", from, until)
	expired, _ := ca.Leaf(code, from.Add(-48*time.Hour), from)
	for name, c := range map[string]struct {
		proof *x509.Certificate
		code  string
		want  string
	}{
		"another key": {forged.Cert, code, "not signed by the CA's private key"},
		"wrong CN":    {wrongCN.Cert, code, `subject CN is "dev1"; it must be the verification code`},
		"expired":     {expired.Cert, code, "expired at"},
		"no code":     {proof.Cert, "", "no verification code was issued"},
	} {
		err := x509auth.CheckProof(ca.Cert, c.proof, c.code, now)
		if !errors.Is(err, x509auth.ErrProof) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
}

func TestCheckCA(t *testing.T) {
	ca := mustCA(t, "ca")
	if err := x509auth.CheckCA(ca.Cert, now); err != nil {
		t.Fatal(err)
	}
	leaf, _ := ca.Leaf("dev1", from, until)
	if err := x509auth.CheckCA(leaf.Cert, now); !errors.Is(err, x509auth.ErrNotCA) || !strings.Contains(err.Error(), "CA:TRUE") {
		t.Errorf("a leaf: %v", err)
	}
	if err := x509auth.CheckCA(ca.Cert, until.Add(time.Hour)); !errors.Is(err, x509auth.ErrNotCA) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired: %v", err)
	}
}

func TestParseCertificate(t *testing.T) {
	ca := mustCA(t, "ca")
	leaf, _ := ca.Leaf("dev1", from, until)
	pemText := x509auth.EncodePEM(ca.Cert)
	b64 := base64.StdEncoding.EncodeToString(ca.Cert.Raw)
	wrapped := b64[:40] + "\r\n" + b64[40:]
	for name, in := range map[string][]byte{"PEM": []byte(pemText), "base64": []byte(b64), "wrapped base64": []byte(wrapped), "DER": ca.Cert.Raw} {
		c, err := x509auth.ParseCertificate(in)
		if err != nil || !c.Equal(ca.Cert) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// DER whose last byte (the signature's) is one bytes.TrimSpace would
	// cut: ParseCertificate does not check the signature, so changing it
	// keeps the certificate parseable, and it must come back whole.
	for _, last := range []byte{'\t', '\n', '\v', '\f', '\r', ' '} {
		der := append([]byte(nil), ca.Cert.Raw...)
		der[len(der)-1] = last
		c, err := x509auth.ParseCertificate(der)
		if err != nil || string(c.Raw) != string(der) {
			t.Errorf("DER ending in %q: %v", last, err)
		}
	}
	for name, c := range map[string]struct {
		in   []byte
		want string
	}{
		"empty":     {nil, "empty"},
		"garbage":   {[]byte("hello world!"), "neither PEM"},
		"key":       {leaf.KeyPEM, `type "EC PRIVATE KEY"`},
		"two certs": {[]byte(pemText + x509auth.EncodePEM(leaf.Cert)), "more than one"},
		"with key":  {append([]byte(pemText), leaf.KeyPEM...), "never a private key"},
		"bad DER":   {[]byte{0x30, 0x03, 1, 2, 3}, "invalid certificate"},
		"huge":      {make([]byte, 70<<10), "at most"},
	} {
		_, err := x509auth.ParseCertificate(c.in)
		if !errors.Is(err, x509auth.ErrCertificate) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
}

func FuzzParseThumbprint(f *testing.F) {
	for _, s := range []string{"", strings.Repeat("ab", 20), "AB:CD", strings.Repeat("0F", 32), "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := x509auth.ParseThumbprint(s)
		if err != nil {
			return
		}
		again, err := x509auth.ParseThumbprint(got)
		if err != nil || again != got || (len(got) != 40 && len(got) != 64) {
			t.Fatalf("%q → %q → %q, %v", s, got, again, err)
		}
	})
}

func FuzzParseCertificate(f *testing.F) {
	ca, err := certs.NewCA("ca", from, until)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(x509auth.EncodePEM(ca.Cert)))
	f.Add(ca.Cert.Raw)
	f.Add([]byte(base64.StdEncoding.EncodeToString(ca.Cert.Raw)))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := x509auth.ParseCertificate(in)
		if err == nil && c == nil {
			t.Fatal("nil certificate without an error")
		}
		if err != nil && !errors.Is(err, x509auth.ErrCertificate) {
			t.Fatalf("error %v is not an ErrCertificate", err)
		}
	})
}
