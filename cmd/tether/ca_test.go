package main

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/x509auth"
)

func dataDirOf(h *cliHub) string { return h.flags[len(h.flags)-1] }

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509auth.ParseCertificate(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The X.509 walk-through the commands print: a certificate from the dev
// device CA, the CA registered and verified with its key, the device
// created with --auth ca; and a self-signed one with its thumbprint.
func TestX509Commands(t *testing.T) {
	h := startCLIHub(t)
	dir := dataDirOf(h)

	out := h.mustRun(t, "device", "cert", "cam-1")
	certPath := filepath.Join(dir, "devices", "cam-1.pem")
	if !strings.Contains(out, certPath) || !strings.Contains(out, "tether ca add dev-devices") || !strings.Contains(out, "tether device create cam-1 --auth ca") {
		t.Fatalf("device cert:\n%s", out)
	}
	leaf := readCert(t, certPath)
	if leaf.Subject.CommonName != "cam-1" {
		t.Fatalf("CN %q", leaf.Subject.CommonName)
	}
	if _, err := tlsPair(filepath.Join(dir, "devices", "cam-1-key.pem"), certPath); err != nil {
		t.Fatalf("key and certificate do not pair: %v", err)
	}

	caFile, keyFile := filepath.Join(dir, certs.DeviceCAFile), filepath.Join(dir, certs.DeviceCAKeyFile)
	out = h.mustRun(t, "ca", "add", "dev-devices", caFile, "--key", keyFile)
	if !strings.Contains(out, "Verified:") || !strings.Contains(out, "true") {
		t.Fatalf("ca add --key:\n%s", out)
	}
	h.mustRun(t, "device", "create", "cam-1", "--auth", "ca")
	d, _ := h.reg.Device("cam-1")
	if d.Authentication.Type != registry.AuthCertificateAuthority {
		t.Fatalf("cam-1: %+v", d.Authentication)
	}
	if ca, err := h.reg.Authorities().VerifyDevice([]*x509.Certificate{leaf}, "cam-1", time.Now()); err != nil || ca != "dev-devices" {
		t.Fatalf("the hub does not accept the certificate: %q %v", ca, err)
	}

	var list []registry.CACertificate
	if err := json.Unmarshal([]byte(h.mustRun(t, "-o", "json", "ca", "list")), &list); err != nil || len(list) != 1 || !list[0].Properties.IsVerified {
		t.Fatalf("ca list: %v %+v", err, list)
	}
	if out := h.mustRun(t, "ca", "list"); !strings.Contains(out, "dev-devices") || !strings.Contains(out, "CN=Tether dev device CA") {
		t.Fatalf("ca list:\n%s", out)
	}

	// Self-signed: the thumbprint from the printed hex or from the file.
	out = h.mustRun(t, "-o", "json", "device", "cert", "cam-2", "--self-signed", "--out", filepath.Join(dir, "ss"))
	var made struct {
		Certificate, ThumbprintSha1 string
	}
	if err := json.Unmarshal([]byte(out), &made); err != nil {
		t.Fatal(err)
	}
	h.mustRun(t, "device", "create", "cam-2", "--auth", "selfSigned", "--thumbprint", made.ThumbprintSha1)
	h.mustRun(t, "device", "create", "cam-3", "--auth", "selfsigned", "--thumbprint", made.Certificate)
	out = h.mustRun(t, "device", "show", "cam-3")
	_, s256 := x509auth.Thumbprints(readCert(t, made.Certificate))
	if !strings.Contains(out, "X.509 thumbprints:") || !strings.Contains(out, s256) || !strings.Contains(out, "selfSigned") {
		t.Fatalf("show cam-3:\n%s", out)
	}

	// A CA verified in two steps: the code, then a proof made elsewhere.
	other, err := certs.NewCA("other CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherFile := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(otherFile, []byte(x509auth.EncodePEM(other.Cert)), 0o600); err != nil {
		t.Fatal(err)
	}
	h.mustRun(t, "ca", "add", "other", otherFile)
	out = h.mustRun(t, "ca", "verify", "other")
	code := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "Verification code:"))
	if len(code) != 32 {
		t.Fatalf("ca verify without a proof:\n%s", out)
	}
	bad, _ := other.Leaf("not-the-code", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	badFile := filepath.Join(dir, "bad.pem")
	_ = os.WriteFile(badFile, bad.CertPEM, 0o600)
	if _, err := h.run(t, "ca", "verify", "other", "--proof", badFile); err == nil || !strings.Contains(err.Error(), "must be the verification code") {
		t.Fatalf("a wrong proof: %v", err)
	}
	proof, _ := other.Leaf(code, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	proofFile := filepath.Join(dir, "proof.pem")
	_ = os.WriteFile(proofFile, proof.CertPEM, 0o600)
	if out := h.mustRun(t, "ca", "verify", "other", "--proof", proofFile); !strings.Contains(out, "true") {
		t.Fatalf("ca verify --proof:\n%s", out)
	}
	if out := h.mustRun(t, "ca", "delete", "other"); !strings.Contains(out, "deleted") {
		t.Fatalf("ca delete:\n%s", out)
	}
	if _, err := h.run(t, "ca", "show", "other"); err == nil || !strings.Contains(err.Error(), "no CA certificate named") {
		t.Fatalf("show a deleted CA: %v", err)
	}
}

func TestX509CommandMistakes(t *testing.T) {
	h := startCLIHub(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"device", "create", "x", "--auth", "selfSigned"}, "needs --thumbprint"},
		{[]string{"device", "create", "x", "--auth", "ca", "--thumbprint", strings.Repeat("ab", 20)}, "goes with --auth selfSigned"},
		{[]string{"device", "create", "x", "--thumbprint", strings.Repeat("ab", 20)}, "goes with --auth selfSigned"},
		{[]string{"device", "create", "x", "--auth", "selfSigned", "--thumbprint", "12"}, "has 2 hex digits"},
		{[]string{"device", "create", "x", "--auth", "magic"}, "use sas, selfSigned or ca"},
		{[]string{"device", "create", "x", "--auth", "ca", "--primary-key", "AAAAAAAAAAAAAAAAAAAAAA=="}, "go with --auth sas"},
		{[]string{"ca", "add", "x", "/nonexistent.pem"}, "no such file"},
		{[]string{"ca", "verify", "ghost"}, "no CA certificate named 'ghost'"},
		{[]string{"device", "cert", "a/b"}, "character '/'"},
	} {
		if _, err := h.run(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("tether %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	if got := h.reg.CAs(); len(got) != 0 {
		t.Errorf("CAs after refusals: %+v", got)
	}
}

func tlsPair(keyFile, certFile string) (certs.Issuer, error) {
	return certs.LoadIssuer(certFile, keyFile)
}
