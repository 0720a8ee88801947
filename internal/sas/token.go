package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Prefix starts every token.
const Prefix = "SharedAccessSignature "

// Sentinel errors; a *TokenError wraps one of them with the detail.
var (
	ErrMalformed = errors.New("malformed SAS token")
	ErrSignature = errors.New("SAS token signature does not match")
	ErrExpired   = errors.New("SAS token expired")
)

// TokenError says what was wrong with a token; Unwrap gives the sentinel.
type TokenError struct {
	Err    error
	Detail string
}

func (e *TokenError) Error() string { return e.Err.Error() + ": " + e.Detail }
func (e *TokenError) Unwrap() error { return e.Err }

func malformed(format string, a ...any) error {
	return &TokenError{Err: ErrMalformed, Detail: fmt.Sprintf(format, a...)}
}

// Token is a parsed SAS token.
type Token struct {
	// RawResource is sr as it appears in the token (percent-encoded); the
	// signature is computed over it.
	RawResource string
	// Resource is sr decoded, e.g. "hub.example/devices/dev1".
	Resource string
	// Signature is the decoded base64 signature text.
	Signature string
	Expiry    time.Time
	// KeyName is skn: the shared access policy that signed the token, or ""
	// when a device key signed it.
	KeyName string
}

// maxTokenLen bounds what we are willing to parse; real tokens are < 1 KiB.
const maxTokenLen = 4096

// Parse parses a token string. It checks shape only; see Verify.
func Parse(s string) (Token, error) {
	var t Token
	if len(s) > maxTokenLen {
		return t, malformed("token is %d bytes, longer than %d", len(s), maxTokenLen)
	}
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return t, malformed("token must start with %q", Prefix)
	}
	var haveSR, haveSig, haveSE bool
	for field := range strings.SplitSeq(rest, "&") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return t, malformed("field %q has no '='", truncate(field))
		}
		switch k {
		case "sr":
			if haveSR {
				return t, malformed("sr given twice")
			}
			haveSR = true
			dec, err := url.QueryUnescape(v)
			if err != nil {
				return t, malformed("sr is not valid percent-encoding")
			}
			t.RawResource, t.Resource = v, dec
		case "sig":
			if haveSig {
				return t, malformed("sig given twice")
			}
			haveSig = true
			dec, err := url.QueryUnescape(v)
			if err != nil {
				return t, malformed("sig is not valid percent-encoding")
			}
			t.Signature = dec
		case "se":
			if haveSE {
				return t, malformed("se given twice")
			}
			haveSE = true
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > 1<<40 {
				return t, malformed("se %q is not a unix time in seconds", truncate(v))
			}
			t.Expiry = time.Unix(n, 0).UTC()
		case "skn":
			dec, err := url.QueryUnescape(v)
			if err != nil {
				return t, malformed("skn is not valid percent-encoding")
			}
			t.KeyName = dec
		default:
			return t, malformed("unknown field %q", truncate(k))
		}
	}
	switch {
	case !haveSR || t.Resource == "":
		return t, malformed("sr (resource) is missing")
	case !haveSig || t.Signature == "":
		return t, malformed("sig (signature) is missing")
	case !haveSE:
		return t, malformed("se (expiry) is missing")
	}
	return t, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Verify checks the signature with key (base64, as in connection strings)
// and the expiry against now. Every error is a *TokenError wrapping
// ErrSignature or ErrExpired, so callers decide with errors.Is. A key that
// is not base64 verifies nothing: ErrSignature.
func (t Token) Verify(key string, now time.Time) error {
	ok, err := t.signedWith(key)
	if err != nil {
		return &TokenError{Err: ErrSignature, Detail: "shared access key is not base64: " + err.Error()}
	}
	if !ok {
		return &TokenError{Err: ErrSignature, Detail: "the token was not signed with this key"}
	}
	if !now.Before(t.Expiry) {
		return &TokenError{Err: ErrExpired, Detail: "expired at " + t.Expiry.Format(time.RFC3339)}
	}
	return nil
}

// signedWith reports whether key (base64) signed t; an error when key is
// not base64. Every device connect checks one token, so the usual case
// (a key of at most a hash block, a resource of a few hundred bytes)
// works in buffers on the stack instead of crypto/hmac's several heap
// objects per check; anything else takes crypto/hmac.
func (t Token) signedWith(key string) (bool, error) {
	var src [keyText]byte
	var kb [sha256.BlockSize + 2]byte // DecodedLen of keyText
	var msg [macMsgMax]byte
	// The signed text: the resource as it appears in the token, a
	// newline, the expiry in decimal seconds.
	m := copy(msg[sha256.BlockSize:], t.RawResource)
	if len(key) > keyText || len(t.Signature) > sigText || m < len(t.RawResource) || sha256.BlockSize+m+1+20 > macMsgMax {
		return t.signedWithSlow(key)
	}
	n, err := base64.StdEncoding.Decode(kb[:], src[:copy(src[:], key)])
	if err != nil {
		return false, err
	}
	if n > sha256.BlockSize { // HMAC hashes a key longer than a block first
		return t.signedWithSlow(key)
	}
	end := sha256.BlockSize + m
	msg[end] = '\n'
	end = len(strconv.AppendInt(msg[:end+1], t.Expiry.Unix(), 10))
	want := hmacSHA256(kb[:n], &msg, end)
	var sigSrc [sigText]byte
	var got [sha256.Size + 2]byte // DecodedLen of sigText
	g, err := base64.StdEncoding.Decode(got[:], sigSrc[:copy(sigSrc[:], t.Signature)])
	return err == nil && hmac.Equal(got[:g], want[:]), nil // hmac.Equal is constant-time
}

// signedWithSlow is signedWith with crypto/hmac and heap buffers.
func (t Token) signedWithSlow(key string) (bool, error) {
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return false, err
	}
	got, err := base64.StdEncoding.DecodeString(t.Signature)
	return err == nil && hmac.Equal(got, mac(raw, t.RawResource, t.Expiry.Unix())), nil
}

// Buffer sizes of signedWith: the base64 text of a key of up to one
// SHA-256 block (64 bytes: 88 characters), of a SHA-256 signature (32
// bytes: 44 characters), and the inner hash's input (block + message).
const (
	keyText   = 88
	sigText   = 44
	macMsgMax = 512
)

// hmacSHA256 is HMAC-SHA256 (RFC 2104) of msg[sha256.BlockSize:end] with
// key (at most a block), using msg's first block for the padded key.
func hmacSHA256(key []byte, msg *[macMsgMax]byte, end int) [sha256.Size]byte {
	var pad [sha256.BlockSize]byte
	copy(pad[:], key)
	for i := range pad {
		msg[i] = pad[i] ^ 0x36
	}
	inner := sha256.Sum256(msg[:end])
	var outer [sha256.BlockSize + sha256.Size]byte
	for i := range pad {
		outer[i] = pad[i] ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

func mac(key []byte, rawResource string, expiry int64) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(rawResource))
	h.Write([]byte{'\n'})
	h.Write([]byte(strconv.FormatInt(expiry, 10)))
	return h.Sum(nil)
}

// Sign makes a token for resource (unencoded, e.g. "hub/devices/dev1") valid
// until expiry, signed with key (base64). keyName is skn ("" for device keys).
func Sign(resource, key, keyName string, expiry time.Time) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return "", fmt.Errorf("shared access key is not base64: %w", err)
	}
	sr := url.QueryEscape(resource)
	se := expiry.Unix()
	sig := base64.StdEncoding.EncodeToString(mac(raw, sr, se))
	var b strings.Builder
	b.WriteString(Prefix)
	b.WriteString("sr=" + sr)
	b.WriteString("&sig=" + url.QueryEscape(sig))
	if keyName != "" {
		b.WriteString("&skn=" + url.QueryEscape(keyName))
	}
	b.WriteString("&se=" + strconv.FormatInt(se, 10))
	return b.String(), nil
}

// DeviceResource is the sr of a device-scoped token.
func DeviceResource(host, deviceID string) string { return host + "/devices/" + deviceID }
