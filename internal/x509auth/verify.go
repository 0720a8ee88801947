package x509auth

import (
	"crypto/x509"
	"errors"
	"strings"
	"time"
)

// checkValidity refuses a certificate outside its validity period.
func checkValidity(c *x509.Certificate, what string, now time.Time) *Error {
	switch {
	case now.Before(c.NotBefore):
		return fail(Expired, "the %s certificate (subject %q) is not valid before %s", what, c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return fail(Expired, "the %s certificate (subject %q) expired at %s", what, c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// VerifySelfSigned checks a selfSigned device's certificate: chain[0] (the
// leaf the device presented) must be valid now and have the primary or the
// secondary thumbprint (canonical form; "" when unset).
func VerifySelfSigned(chain []*x509.Certificate, primary, secondary string, now time.Time) error {
	if len(chain) == 0 {
		return fail(NoCertificate, "no client certificate: the device authenticates with a self-signed X.509 certificate")
	}
	leaf := chain[0]
	if err := checkValidity(leaf, "device", now); err != nil {
		return err
	}
	if MatchesThumbprint(leaf, primary) || MatchesThumbprint(leaf, secondary) {
		return nil
	}
	s1, s2 := Thumbprints(leaf)
	return fail(ThumbprintMismatch, "Thumbprint does not match configuration: Thumbprint: SHA1Hash=%s, SHA2Hash=%s; Configuration: PrimaryThumbprint=%s, SecondaryThumbprint=%s",
		s1, s2, orNone(primary), orNone(secondary))
}

func orNone(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// Authority is a CA certificate registered with the hub.
type Authority struct {
	Name     string
	Cert     *x509.Certificate
	Verified bool // proof of possession done (or verified on upload)
}

// Authorities are the hub's registered CAs, for checking device chains.
// Immutable once built; safe for concurrent use.
type Authorities struct {
	verified, unverified *x509.CertPool
	names                map[string]string // by DER
	n                    int
}

// NewAuthorities builds the set; a nil or empty list verifies nothing.
func NewAuthorities(list []Authority) *Authorities {
	a := &Authorities{verified: x509.NewCertPool(), unverified: x509.NewCertPool(), names: map[string]string{}}
	for _, ca := range list {
		if ca.Cert == nil {
			continue
		}
		if ca.Verified {
			a.verified.AddCert(ca.Cert)
		} else {
			a.unverified.AddCert(ca.Cert)
		}
		a.names[string(ca.Cert.Raw)] = ca.Name
		a.n++
	}
	return a
}

// Len is how many CAs are registered.
func (a *Authorities) Len() int {
	if a == nil {
		return 0
	}
	return a.n
}

// VerifyDevice checks a certificateAuthority device's chain (chain[0] the
// leaf, then any intermediates the device sent): valid now, chaining to a
// verified CA, subject CN equal to deviceID. It returns the name of the CA
// the chain ends at.
func (a *Authorities) VerifyDevice(chain []*x509.Certificate, deviceID string, now time.Time) (string, error) {
	if len(chain) == 0 {
		return "", fail(NoCertificate, "no client certificate: the device authenticates with an X.509 certificate signed by a registered CA")
	}
	leaf := chain[0]
	if err := checkValidity(leaf, "device", now); err != nil {
		return "", err
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	var chains [][]*x509.Certificate
	var err error
	if a != nil {
		opts.Roots = a.verified
		chains, err = leaf.Verify(opts)
	} else {
		err = x509.UnknownAuthorityError{Cert: leaf}
	}
	if err != nil {
		return "", a.chainFailure(leaf, opts, err)
	}
	ca := a.names[string(chains[0][len(chains[0])-1].Raw)]
	if cn := leaf.Subject.CommonName; cn != deviceID {
		return ca, fail(CNMismatch, "the certificate's subject CN is %q, not the device id %q (it chains to CA '%s')", cn, deviceID, ca)
	}
	return ca, nil
}

// chainFailure says why a chain did not verify against the verified CAs:
// an expired certificate in it, a registered CA still unverified, or no
// registered CA at all.
func (a *Authorities) chainFailure(leaf *x509.Certificate, opts x509.VerifyOptions, err error) error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		return fail(Expired, "a certificate of the chain is outside its validity period: %v", inv.Detail)
	}
	if a != nil && a.n > 0 {
		opts.Roots = a.unverified
		if chains, uerr := leaf.Verify(opts); uerr == nil {
			ca := a.names[string(chains[0][len(chains[0])-1].Raw)]
			return fail(UnverifiedCA, "the certificate chains to CA '%s', which is registered but not verified: prove possession of its key first (tether ca verify %s)", ca, ca)
		}
	}
	issuer := leaf.Issuer.String()
	if issuer == "" {
		issuer = "(empty)"
	}
	detail := strings.TrimPrefix(err.Error(), "x509: ")
	return fail(UnknownCA, "the certificate (issuer %s) does not chain to a CA registered with the hub: %s", issuer, detail)
}
