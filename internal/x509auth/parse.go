package x509auth

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
)

// ErrCertificate is wrapped by ParseCertificate's errors.
var ErrCertificate = errors.New("invalid certificate")

// maxCertificate bounds an uploaded certificate (a CA certificate is a
// few KiB; a chain pasted whole is refused anyway).
const maxCertificate = 64 << 10

// ParseCertificate reads exactly one X.509 certificate as IoT Hub takes
// uploads: PEM ("-----BEGIN CERTIFICATE-----"), base64 of the DER bytes
// (a .cer file's content), or the DER bytes themselves.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	if len(data) > maxCertificate {
		return nil, fmt.Errorf("%w: %d bytes; a certificate is at most %d", ErrCertificate, len(data), maxCertificate)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCertificate)
	}
	var der []byte
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		var err error
		if der, err = onePEMCertificate(trimmed); err != nil {
			return nil, err
		}
	case data[0] == 0x30: // an ASN.1 SEQUENCE: DER, taken as sent
		// Not trimmed: a DER certificate ends with signature bytes, and
		// one in 40 ends with a byte TrimSpace would cut (tab, LF, CR,
		// space…), which made the upload fail as malformed.
		der = data
	default:
		b, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(trimmed), nil)))
		if err != nil {
			return nil, fmt.Errorf("%w: neither PEM, nor base64 of DER, nor DER", ErrCertificate)
		}
		der = b
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertificate, err)
	}
	return c, nil
}

// onePEMCertificate returns the DER of the only CERTIFICATE block in data.
func onePEMCertificate(data []byte) ([]byte, error) {
	var der []byte
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if len(bytes.TrimSpace(rest)) != 0 && der == nil {
				return nil, fmt.Errorf("%w: the PEM data does not decode", ErrCertificate)
			}
			break
		}
		switch {
		case b.Type != "CERTIFICATE":
			return nil, fmt.Errorf("%w: a PEM block of type %q; send only the certificate (never a private key)", ErrCertificate, b.Type)
		case der != nil:
			return nil, fmt.Errorf("%w: more than one certificate; send one at a time", ErrCertificate)
		}
		der = b.Bytes
	}
	if der == nil {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrCertificate)
	}
	return der, nil
}

// EncodePEM is c as a PEM CERTIFICATE block.
func EncodePEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}
