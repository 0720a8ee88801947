package connlog

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// ItemID is the _ItemId of the n-th record (from 0) made from the journal
// entry sourceID of category: a GUID-shaped name-based id (RFC 9562
// version 8 over SHA-256), so the same entry always gives the same ids and
// a redelivered entry is recognised by the store.
func ItemID(category, sourceID string, n int) string {
	h := sha256.New()
	h.Write([]byte("tether/connlog\x00"))
	h.Write([]byte(category))
	h.Write([]byte{0})
	h.Write([]byte(sourceID))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(n)))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
