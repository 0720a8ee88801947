package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signedWith's stack HMAC answers as crypto/hmac does, for keys and
// resources inside its buffers and past them (keys longer than a hash
// block, resources longer than its message buffer), for signatures of the
// right key and of another, and for malformed keys and signatures.
func TestSignedWithMatchesCryptoHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	exp := time.Unix(1900000000, 0)
	for i := range 2000 {
		key := make([]byte, []int{16, 32, 33, 63, 64, 65, 100}[i%7])
		for j := range key {
			key[j] = byte(rng.UintN(256))
		}
		res := "hub.example%2Fdevices%2F" + strings.Repeat("d", []int{1, 40, 400, 430, 431, 440, 1000}[rng.IntN(7)])
		b64 := base64.StdEncoding.EncodeToString(key)
		sig := reference(key, res, exp.Unix())
		tok := Token{RawResource: res, Signature: sig, Expiry: exp}
		ok, err := tok.signedWith(b64)
		if err != nil || !ok {
			t.Fatalf("key %d bytes, resource %d: signed by its key: %v %v", len(key), len(res), ok, err)
		}
		other := append([]byte(nil), key...)
		other[rng.IntN(len(other))] ^= 1
		if ok, err := tok.signedWith(base64.StdEncoding.EncodeToString(other)); err != nil || ok {
			t.Fatalf("key %d bytes, resource %d: a key one bit off verified: %v %v", len(key), len(res), ok, err)
		}
		bad := tok
		bad.Expiry = exp.Add(time.Second)
		if ok, _ := bad.signedWith(b64); ok {
			t.Fatal("a token whose expiry was changed verified")
		}
	}
	tok := Token{RawResource: "r", Signature: reference([]byte("k"), "r", 1), Expiry: time.Unix(1, 0)}
	if _, err := tok.signedWith("not base64!"); err == nil {
		t.Fatal("a key that is not base64 gave no error")
	}
	for _, sig := range []string{"", "!!!!", tok.Signature[:20], tok.Signature + "AAAA", tok.Signature[:10] + "\n" + tok.Signature[10:]} {
		bad := tok
		bad.Signature = sig
		ok, err := bad.signedWith(base64.StdEncoding.EncodeToString([]byte("k")))
		want := hmac.Equal(decodeOrNil(sig), decodeOrNil(tok.Signature))
		if err != nil || ok != want {
			t.Fatalf("signature %q: %v %v, crypto/hmac says %v", sig, ok, err, want)
		}
	}
}

func reference(key []byte, res string, se int64) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(res + "\n" + strconv.FormatInt(se, 10)))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func decodeOrNil(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// BenchmarkVerify is one device token's check, as every CONNECT makes it.
func BenchmarkVerify(b *testing.B) {
	exp := time.Now().Add(time.Hour)
	s, err := Sign(DeviceResource("hub.example", "device-0001"), testKey, "", exp)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := Parse(s)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := tok.Verify(testKey, now); err != nil {
			b.Fatal(err)
		}
	}
}
