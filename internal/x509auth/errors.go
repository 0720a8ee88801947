package x509auth

import "fmt"

// Failure is the typed cause of a refused certificate: low-cardinality,
// for the log's reason and the deviceAuthFailures metric.
type Failure string

const (
	// NoCertificate: the device authenticates with X.509 but presented no
	// client certificate.
	NoCertificate Failure = "no-certificate"
	// Expired: the certificate (or a certificate of its chain) is expired
	// or not yet valid.
	Expired Failure = "certificate-expired"
	// ThumbprintMismatch: a self-signed device's certificate has neither
	// registered thumbprint.
	ThumbprintMismatch Failure = "thumbprint-mismatch"
	// UnknownCA: the certificate chains to no CA registered with the hub
	// (or its chain does not verify).
	UnknownCA Failure = "ca-unknown"
	// UnverifiedCA: the certificate chains to a registered CA whose proof
	// of possession is still missing.
	UnverifiedCA Failure = "ca-unverified"
	// CNMismatch: the certificate's subject common name is not the
	// device id.
	CNMismatch Failure = "cn-mismatch"
)

// Error is a refused certificate: why (Failure) and what exactly (Detail).
type Error struct {
	Failure Failure
	Detail  string
}

func (e *Error) Error() string { return e.Detail }

func fail(f Failure, format string, a ...any) *Error {
	return &Error{Failure: f, Detail: fmt.Sprintf(format, a...)}
}
