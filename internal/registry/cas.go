package registry

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/tether-hub/tether/internal/x509auth"
)

// CA certificates for X.509 device authentication (authentication type
// certificateAuthority), in the shape of IoT Hub's certificate resource
// (CertificateDescription / CertificateWithNonceDescription of the
// Microsoft.Devices management API). A CA authenticates devices once it is
// verified: by proof of possession (VerificationCode, then VerifyCA with a
// certificate whose CN is the code, signed by the CA's key), or on upload
// when the operator vouches for it (Azure's "verified on upload").
//
// CA writes are not journalled (the DeviceIdentityOperations log is about
// devices); they are rare and logged by the API's caller.

// CACertificate is one registered CA certificate.
type CACertificate struct {
	Name       string       `json:"name"`
	ETag       string       `json:"etag"`
	Properties CAProperties `json:"properties"`
}

// CAProperties are the certificate resource's properties, plus Tether's
// SHA-256 thumbprint.
type CAProperties struct {
	Subject string    `json:"subject"`
	Expiry  time.Time `json:"expiry"`
	// Thumbprint is the SHA-1 thumbprint, as IoT Hub shows it.
	Thumbprint       string    `json:"thumbprint"`
	ThumbprintSHA256 string    `json:"thumbprintSha256"`
	IsVerified       bool      `json:"isVerified"`
	Created          time.Time `json:"created"`
	Updated          time.Time `json:"updated"`
	Certificate      string    `json:"certificate"` // PEM
	// VerificationCode is the pending proof-of-possession code: set by
	// VerificationCode, cleared once verified.
	VerificationCode string `json:"verificationCode,omitempty"`
}

// Error codes of the certificate endpoints.
const (
	CodeCertificateNotFound      = "CertificateNotFound"
	CodeCertificateAlreadyExists = "CertificateAlreadyExists"
	CodeInvalidCertificate       = "InvalidCertificate"
	CodeVerificationFailed       = "CertificateVerificationFailed"
)

// caEntry is a cached CA with its store revision and parsed certificate.
type caEntry struct {
	ca   CACertificate
	rev  uint64
	cert *x509.Certificate
}

// maxCANameLen bounds CA names (IoT Hub: 1–64 characters).
const maxCANameLen = 64

// ValidateCAName says why name cannot name a CA: 1–64 ASCII letters,
// digits, '-', '_' and '.'.
func ValidateCAName(name string) error {
	if name == "" || len(name) > maxCANameLen {
		return invalid("CA name %q: use 1 to %d characters", truncate(name), maxCANameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			continue
		}
		return invalid("CA name %q has the character %q at position %d; allowed are ASCII letters, digits, '-', '_' and '.'", truncate(name), rune(c), i)
	}
	return nil
}

func caNotFound(name string) *Error {
	return &Error{Code: CodeCertificateNotFound, Status: http.StatusNotFound, Err: ErrNotFound,
		Message: fmt.Sprintf("no CA certificate named '%s' is registered", name)}
}

func caInvalid(format string, a ...any) *Error {
	return &Error{Code: CodeInvalidCertificate, Status: http.StatusBadRequest, Err: ErrInvalid, Message: fmt.Sprintf(format, a...)}
}

// loadCAs fills the CA cache from the store. A document that does not
// decode, or whose certificate does not parse, fails the start: the hub
// must not silently lose a CA devices rely on.
func (r *Registry) loadCAs(ctx context.Context) error {
	list, err := r.store.ListCAs(ctx)
	if err != nil {
		return fmt.Errorf("registry: loading CA certificates: %w", err)
	}
	r.cas = make(map[string]caEntry, len(list))
	for _, s := range list {
		e, err := decodeCA(s)
		if err != nil {
			return err
		}
		r.cas[s.Name] = e
	}
	r.rebuildAuthorities()
	return nil
}

func decodeCA(s StoredCA) (caEntry, error) {
	var ca CACertificate
	if err := json.Unmarshal(s.Doc, &ca); err != nil {
		return caEntry{}, fmt.Errorf("registry: CA %s at revision %d is corrupt: %w", s.Name, s.Revision, err)
	}
	c, err := x509auth.ParseCertificate([]byte(ca.Properties.Certificate))
	if err != nil {
		return caEntry{}, fmt.Errorf("registry: CA %s at revision %d: %w", s.Name, s.Revision, err)
	}
	ca.Name, ca.ETag = s.Name, ETag(s.Revision)
	return caEntry{ca: ca, rev: s.Revision, cert: c}, nil
}

// rebuildAuthorities publishes the verified CAs to the broker's path.
// Callers hold writeMu (or are in New).
func (r *Registry) rebuildAuthorities() {
	list := make([]x509auth.Authority, 0, len(r.cas))
	for _, e := range r.cas {
		list = append(list, x509auth.Authority{Name: e.ca.Name, Cert: e.cert, Verified: e.ca.Properties.IsVerified})
	}
	r.authorities.Store(x509auth.NewAuthorities(list))
}

// Authorities are the registered CAs for checking device certificates;
// no I/O, safe to call on every CONNECT.
func (r *Registry) Authorities() *x509auth.Authorities { return r.authorities.Load() }

// CAs lists the registered CA certificates by name.
func (r *Registry) CAs() []CACertificate {
	r.mu.RLock()
	out := make([]CACertificate, 0, len(r.cas))
	for _, e := range r.cas {
		out = append(out, e.ca)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CA returns the named CA certificate.
func (r *Registry) CA(name string) (CACertificate, error) {
	r.mu.RLock()
	e, ok := r.cas[name]
	r.mu.RUnlock()
	if !ok {
		return CACertificate{}, caNotFound(name)
	}
	return e.ca, nil
}

// AddCA registers a CA certificate (PEM, base64 of DER, or DER) under
// name. verified marks it verified at once (the operator vouches for
// holding its key); otherwise it must be verified by proof of possession
// before devices can use it.
func (r *Registry) AddCA(ctx context.Context, name string, data []byte, verified bool) (CACertificate, error) {
	if err := ValidateCAName(name); err != nil {
		return CACertificate{}, err
	}
	c, err := x509auth.ParseCertificate(data)
	if err != nil {
		return CACertificate{}, caInvalid("%v", err)
	}
	now := r.opts.Now().UTC()
	if err := x509auth.CheckCA(c, now); err != nil {
		return CACertificate{}, caInvalid("%v", err)
	}
	s1, s2 := x509auth.Thumbprints(c)
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	for _, e := range r.snapshotCAs() {
		if e.ca.Properties.ThumbprintSHA256 == s2 {
			return CACertificate{}, &Error{Code: CodeCertificateAlreadyExists, Status: http.StatusConflict, Err: ErrExists,
				Message: fmt.Sprintf("this certificate is already registered as '%s'", e.ca.Name)}
		}
	}
	ca := CACertificate{Name: name, Properties: CAProperties{
		Subject: c.Subject.String(), Expiry: c.NotAfter.UTC(), Thumbprint: s1, ThumbprintSHA256: s2,
		IsVerified: verified, Created: now, Updated: now, Certificate: x509auth.EncodePEM(c),
	}}
	return r.putCA(ctx, ca, 0, c, true)
}

// VerificationCode issues a new proof-of-possession code for the named CA
// (replacing any earlier one) and returns the CA with it. ifMatch as for
// Replace.
func (r *Registry) VerificationCode(ctx context.Context, name, ifMatch string) (CACertificate, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	e, err := r.currentCA(name, ifMatch)
	if err != nil {
		return CACertificate{}, err
	}
	ca := e.ca
	ca.Properties.VerificationCode = x509auth.NewVerificationCode()
	ca.Properties.Updated = r.opts.Now().UTC()
	return r.putCA(ctx, ca, e.rev, e.cert, false)
}

// VerifyCA completes a proof of possession: proof (PEM, base64 of DER or
// DER) must carry the CA's current verification code as its subject CN
// and be signed by the CA's key. The CA is verified from then on.
func (r *Registry) VerifyCA(ctx context.Context, name, ifMatch string, proof []byte) (CACertificate, error) {
	p, err := x509auth.ParseCertificate(proof)
	if err != nil {
		return CACertificate{}, caInvalid("verification certificate: %v", err)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	e, err := r.currentCA(name, ifMatch)
	if err != nil {
		return CACertificate{}, err
	}
	now := r.opts.Now().UTC()
	if err := x509auth.CheckProof(e.cert, p, e.ca.Properties.VerificationCode, now); err != nil {
		return CACertificate{}, &Error{Code: CodeVerificationFailed, Status: http.StatusBadRequest, Err: ErrInvalid,
			Message: fmt.Sprintf("CA '%s': %v", name, err)}
	}
	ca := e.ca
	ca.Properties.IsVerified, ca.Properties.VerificationCode, ca.Properties.Updated = true, "", now
	return r.putCA(ctx, ca, e.rev, e.cert, false)
}

// DeleteCA removes the named CA; devices whose certificates chain only to
// it can no longer connect. ifMatch as for Replace.
func (r *Registry) DeleteCA(ctx context.Context, name, ifMatch string) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	e, err := r.currentCA(name, ifMatch)
	if err != nil {
		return err
	}
	switch err := r.store.DeleteCA(ctx, name, e.rev); {
	case errors.Is(err, ErrNotFound):
		return caNotFound(name)
	case errors.Is(err, ErrPreconditionFailed):
		return preconditionFailed("CA '%s' was changed by another writer; read it again and retry", name)
	case err != nil:
		return fmt.Errorf("registry: deleting CA %s: %w", name, err)
	}
	r.mu.Lock()
	delete(r.cas, name)
	r.mu.Unlock()
	r.rebuildAuthorities()
	return nil
}

// currentCA is the cached CA, checked against the If-Match etag. The
// caller holds writeMu, so the cache is the latest this node wrote.
func (r *Registry) currentCA(name, ifMatch string) (caEntry, error) {
	r.mu.RLock()
	e, ok := r.cas[name]
	r.mu.RUnlock()
	if !ok {
		return caEntry{}, caNotFound(name)
	}
	if want := unquoteETag(ifMatch); want != "" && want != "*" && want != e.ca.ETag {
		return caEntry{}, preconditionFailed("CA '%s' has etag \"%s\", not \"%s\": it changed since you read it; read it again and retry", name, e.ca.ETag, want)
	}
	return e, nil
}

// putCA writes ca at expectRevision and updates the cache and the
// authorities. The caller holds writeMu.
func (r *Registry) putCA(ctx context.Context, ca CACertificate, expect uint64, cert *x509.Certificate, create bool) (CACertificate, error) {
	ca.ETag = ""
	doc, err := json.Marshal(ca)
	if err != nil {
		return CACertificate{}, fmt.Errorf("registry: encoding CA %s: %w", ca.Name, err)
	}
	rev, err := r.store.PutCA(ctx, ca.Name, doc, expect)
	switch {
	case errors.Is(err, ErrPreconditionFailed) && create:
		return CACertificate{}, &Error{Code: CodeCertificateAlreadyExists, Status: http.StatusConflict, Err: ErrExists,
			Message: fmt.Sprintf("a CA certificate named '%s' is already registered", ca.Name)}
	case errors.Is(err, ErrPreconditionFailed):
		return CACertificate{}, preconditionFailed("CA '%s' was changed by another writer; read it again and retry", ca.Name)
	case err != nil:
		return CACertificate{}, fmt.Errorf("registry: writing CA %s: %w", ca.Name, err)
	}
	ca.ETag = ETag(rev)
	r.mu.Lock()
	r.cas[ca.Name] = caEntry{ca: ca, rev: rev, cert: cert}
	r.mu.Unlock()
	r.rebuildAuthorities()
	return ca, nil
}

// snapshotCAs copies the cache's entries.
func (r *Registry) snapshotCAs() []caEntry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]caEntry, 0, len(r.cas))
	for _, e := range r.cas {
		out = append(out, e)
	}
	return out
}
