package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Issuing device certificates: for trying X.509 authentication out
// (`tether device cert`), for proofs of possession of a CA
// (`tether ca verify --key`), and for tests.

// Device CA files inside a dev data dir: a CA apart from the one that
// signs the hub's server certificate, so trusting devices never means
// trusting the hub's TLS CA key.
const (
	DeviceCAFile    = "device-ca.pem"
	DeviceCAKeyFile = "device-ca-key.pem"
)

// Issuer is a CA certificate with its key.
type Issuer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Issued is a certificate and its private key, parsed and as PEM.
type Issued struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// TLS is the pair as a client certificate for tls.Config.
func (i Issued) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{i.Cert.Raw}, PrivateKey: i.Key, Leaf: i.Cert}
}

// NewCA makes a self-signed CA certificate (ECDSA P-256) valid from
// notBefore to notAfter.
func NewCA(cn string, notBefore, notAfter time.Time) (Issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issuer{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn, Organization: []string{"Tether"}},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Issuer{}, err
	}
	c, err := x509.ParseCertificate(der)
	return Issuer{Cert: c, Key: key}, err
}

// Intermediate makes a CA certificate signed by is.
func (is Issuer) Intermediate(cn string, notBefore, notAfter time.Time) (Issuer, error) {
	i, err := is.issue(cn, notBefore, notAfter, true)
	if err != nil {
		return Issuer{}, err
	}
	return Issuer{Cert: i.Cert, Key: i.Key}, nil
}

// Leaf makes a client certificate with subject CN cn (a device id, or a
// verification code) signed by is.
func (is Issuer) Leaf(cn string, notBefore, notAfter time.Time) (Issued, error) {
	return is.issue(cn, notBefore, notAfter, false)
}

func (is Issuer) issue(cn string, notBefore, notAfter time.Time, ca bool) (Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
		tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	}
	parent, signer := is.Cert, is.Key
	if parent == nil { // self-signed
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return Issued{}, err
	}
	return issued(der, key)
}

// SelfSigned makes a self-signed client certificate with subject CN cn,
// for a device registered with authentication type selfSigned.
func SelfSigned(cn string, notBefore, notAfter time.Time) (Issued, error) {
	return Issuer{}.issue(cn, notBefore, notAfter, false)
}

func issued(der []byte, key *ecdsa.PrivateKey) (Issued, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return Issued{}, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Issued{}, err
	}
	return Issued{Cert: c, Key: key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	}, nil
}

// EnsureDeviceCA loads the dev device CA from dir, or makes it (valid 10
// years) on first use.
func EnsureDeviceCA(dir string) (Issuer, error) {
	certPath, keyPath := filepath.Join(dir, DeviceCAFile), filepath.Join(dir, DeviceCAKeyFile)
	if _, err := os.Stat(certPath); err == nil {
		return LoadIssuer(certPath, keyPath)
	} else if !errors.Is(err, os.ErrNotExist) {
		return Issuer{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Issuer{}, err
	}
	is, err := NewCA("Tether dev device CA", time.Now().Add(-time.Hour), time.Now().Add(10*365*24*time.Hour))
	if err != nil {
		return Issuer{}, err
	}
	kb, err := x509.MarshalECPrivateKey(is.Key.(*ecdsa.PrivateKey))
	if err != nil {
		return Issuer{}, err
	}
	if err := writePEM(keyPath, "EC PRIVATE KEY", kb, 0o600); err != nil {
		return Issuer{}, err
	}
	if err := writePEM(certPath, "CERTIFICATE", is.Cert.Raw, 0o644); err != nil {
		return Issuer{}, err
	}
	return is, nil
}

// LoadIssuer reads a CA certificate and its private key (PEM files; see
// ParseIssuer).
func LoadIssuer(certPath, keyPath string) (Issuer, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return Issuer{}, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return Issuer{}, err
	}
	is, err := ParseIssuer(cb, kb)
	if err != nil {
		return Issuer{}, fmt.Errorf("CA %s with key %s: %w", certPath, keyPath, err)
	}
	return is, nil
}

// ParseIssuer reads a CA certificate and its private key (PEM; PKCS#8,
// SEC 1 EC or PKCS#1 RSA) and checks that they belong together.
func ParseIssuer(certPEM, keyPEM []byte) (Issuer, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return Issuer{}, err
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return Issuer{}, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return Issuer{}, errors.New("the key cannot sign")
	}
	return Issuer{Cert: c, Key: signer}, nil
}
