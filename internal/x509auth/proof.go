package x509auth

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotCA and ErrProof are wrapped by CheckCA's and CheckProof's errors.
var (
	ErrNotCA = errors.New("not a usable CA certificate")
	ErrProof = errors.New("proof of possession failed")
)

// CheckCA refuses a certificate that cannot sign device certificates: not
// a CA (basic constraints), without the certSign key usage when it lists
// usages, or outside its validity period.
func CheckCA(c *x509.Certificate, now time.Time) error {
	switch {
	case c.Version >= 3 && !(c.BasicConstraintsValid && c.IsCA):
		return fmt.Errorf("%w: %q has no basic constraints with CA:TRUE, so certificates it signs do not verify", ErrNotCA, c.Subject.String())
	case c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0:
		return fmt.Errorf("%w: %q lists key usages without keyCertSign", ErrNotCA, c.Subject.String())
	}
	if err := checkValidity(c, "CA", now); err != nil {
		return fmt.Errorf("%w: %s", ErrNotCA, err.Detail)
	}
	return nil
}

// NewVerificationCode is a fresh random code for a proof of possession:
// 32 upper-case hex digits (128 bits), short enough for a subject CN.
func NewVerificationCode() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand docs)
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// CheckProof accepts proof as proof that its author holds ca's private
// key: its subject CN is the verification code issued for ca, the CA's
// public key verifies its signature, and it is valid now.
func CheckProof(ca, proof *x509.Certificate, code string, now time.Time) error {
	if code == "" {
		return fmt.Errorf("%w: no verification code was issued for this CA; ask for one first", ErrProof)
	}
	if cn := proof.Subject.CommonName; !strings.EqualFold(cn, code) {
		return fmt.Errorf("%w: the certificate's subject CN is %q; it must be the verification code %s", ErrProof, cn, code)
	}
	// CheckSignature, not CheckSignatureFrom: the proof is a leaf signed
	// by the CA's key, and the CA's own constraints were checked at upload.
	if err := ca.CheckSignature(proof.SignatureAlgorithm, proof.RawTBSCertificate, proof.Signature); err != nil {
		return fmt.Errorf("%w: the certificate is not signed by the CA's private key (%v)", ErrProof, err)
	}
	if err := checkValidity(proof, "verification", now); err != nil {
		return fmt.Errorf("%w: %s", ErrProof, err.Detail)
	}
	return nil
}
