package sas

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const testKey = "c2VjcmV0LWtleS1mb3ItdGVzdHMtMzItYnl0ZXMhIQ==" // base64 of a 32-byte key

func TestSignVerifyRoundTrip(t *testing.T) {
	exp := time.Unix(1900000000, 0)
	tok, err := Sign(DeviceResource("hub.example", "dev%2Fx"), testKey, "", exp)
	if err != nil {
		t.Fatal(err)
	}
	// The SDK percent-encodes the device id once more inside sr.
	if !strings.Contains(tok, "sr=hub.example%2Fdevices%2Fdev%252Fx&") {
		t.Fatalf("sr not encoded like the SDK: %s", tok)
	}
	p, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Resource != "hub.example/devices/dev%2Fx" || !p.Expiry.Equal(exp) || p.KeyName != "" {
		t.Fatalf("parsed %+v", p)
	}
	if err := p.Verify(testKey, exp.Add(-time.Second)); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := p.Verify(testKey, exp); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v, want ErrExpired", err)
	}
	other := "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMzI="
	if err := p.Verify(other, exp.Add(-time.Second)); !errors.Is(err, ErrSignature) {
		t.Fatalf("wrong key: %v, want ErrSignature", err)
	}
}

// TestVerifyErrorsAreTyped: every Verify error is a *TokenError wrapping
// one sentinel, so callers classify with errors.Is, never the text.
func TestVerifyErrorsAreTyped(t *testing.T) {
	exp := time.Unix(1900000000, 0)
	tok, _ := Sign("hub.example/devices/d", testKey, "", exp)
	p, _ := Parse(tok)
	other := "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMzI="
	for _, tc := range []struct {
		name string
		key  string
		now  time.Time
		want error
	}{
		{"expired", testKey, exp.Add(time.Second), ErrExpired},
		{"wrong key", other, exp.Add(-time.Second), ErrSignature},
		{"key not base64", "not base64!", exp.Add(-time.Second), ErrSignature},
	} {
		err := p.Verify(tc.key, tc.now)
		var te *TokenError
		if !errors.Is(err, tc.want) || !errors.As(err, &te) {
			t.Errorf("%s: %v, want a *TokenError wrapping %v", tc.name, err, tc.want)
		}
		for _, s := range []error{ErrExpired, ErrSignature, ErrMalformed} {
			if s != tc.want && errors.Is(err, s) {
				t.Errorf("%s: %v also is %v", tc.name, err, s)
			}
		}
	}
	if _, err := Parse("SharedAccessSignature sr=x"); !errors.Is(err, ErrMalformed) {
		t.Errorf("parse: %v, want ErrMalformed", err)
	}
}

// A token exactly as the Node SDK builds it (field order sr, sig, se, and
// sig with %2B/%2F/%3D escapes) verifies against the raw sr text.
func TestVerifyUsesRawResource(t *testing.T) {
	exp := time.Unix(1795648674, 0)
	raw := []byte{}
	_ = raw
	tok, _ := Sign("localhost/devices/dev1", testKey, "", exp)
	p, _ := Parse(tok)
	// Re-encode sr with lower-case escapes, as some generators do: the
	// signature covers the text, so it must now fail.
	p2 := p
	p2.RawResource = strings.ReplaceAll(p.RawResource, "%2F", "%2f")
	if err := p2.Verify(testKey, exp.Add(-time.Hour)); !errors.Is(err, ErrSignature) {
		t.Fatalf("signature over different sr text must fail, got %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "must start with"},
		{"SharedAccessSignature ", "has no '='"},
		{"SharedAccessSignature sig=a&se=1", "sr (resource) is missing"},
		{"SharedAccessSignature sr=h&se=1", "sig (signature) is missing"},
		{"SharedAccessSignature sr=h&sig=a", "se (expiry) is missing"},
		{"SharedAccessSignature sr=h&sig=a&se=soon", "not a unix time"},
		{"SharedAccessSignature sr=h&sig=a&se=1&sr=h", "sr given twice"},
		{"SharedAccessSignature sr=h&sig=a&se=1&x=1", "unknown field"},
		{"SharedAccessSignature sr=%zz&sig=a&se=1", "percent-encoding"},
		{"SharedAccessSignature sr=h&sig=a&se=1&" + strings.Repeat("a", 5000), "longer than"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.40q) = %v, want malformed containing %q", tc.in, err, tc.want)
		}
	}
}

func TestPolicyTokenHasSkn(t *testing.T) {
	tok, err := Sign("hub", testKey, "iothubowner", time.Unix(2000000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(tok)
	if err != nil || p.KeyName != "iothubowner" {
		t.Fatalf("parsed %+v, %v", p, err)
	}
}

func FuzzParseToken(f *testing.F) {
	tok, _ := Sign("hub/devices/d", testKey, "device", time.Unix(1900000000, 0))
	f.Add(tok)
	f.Add("SharedAccessSignature sr=a&sig=b&se=1")
	f.Add("SharedAccessSignature sr=%&sig=&se=-1&skn=%zz")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if p.Resource == "" || p.Signature == "" {
			t.Fatalf("accepted a token without sr or sig: %q", s)
		}
		_ = p.Verify(testKey, time.Unix(0, 0)) // must not panic
	})
}
