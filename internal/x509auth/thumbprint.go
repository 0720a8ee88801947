package x509auth

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrThumbprint is wrapped by ParseThumbprint's errors.
var ErrThumbprint = errors.New("invalid thumbprint")

// ParseThumbprint checks a thumbprint as an operator types it and returns
// its canonical form (upper-case hex): 40 hex digits (SHA-1) or 64
// (SHA-256). Colons and spaces between the digits (openssl's
// "AB:CD:…" form) are accepted and dropped.
func ParseThumbprint(s string) (string, error) {
	t := strings.Map(func(r rune) rune {
		if r == ':' || r == ' ' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if t == "" {
		return "", fmt.Errorf("%w: empty", ErrThumbprint)
	}
	if len(t) != 2*sha1.Size && len(t) != 2*sha256.Size {
		return "", fmt.Errorf("%w: %q has %d hex digits; a SHA-1 thumbprint has 40, a SHA-256 one 64", ErrThumbprint, clip(s), len(t))
	}
	if _, err := hex.DecodeString(t); err != nil {
		return "", fmt.Errorf("%w: %q is not hexadecimal", ErrThumbprint, clip(s))
	}
	return strings.ToUpper(t), nil
}

// Thumbprints are a certificate's SHA-1 and SHA-256 thumbprints in
// canonical form (upper-case hex of the hash of its DER encoding).
func Thumbprints(c *x509.Certificate) (sha1Hex, sha256Hex string) {
	s1 := sha1.Sum(c.Raw)
	s2 := sha256.Sum256(c.Raw)
	return strings.ToUpper(hex.EncodeToString(s1[:])), strings.ToUpper(hex.EncodeToString(s2[:]))
}

// MatchesThumbprint reports whether c has the canonical thumbprint t
// (SHA-1 or SHA-256, by its length).
func MatchesThumbprint(c *x509.Certificate, t string) bool {
	if t == "" {
		return false
	}
	s1, s2 := Thumbprints(c)
	return t == s1 || t == s2
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
