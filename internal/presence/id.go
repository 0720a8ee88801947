package presence

import (
	"crypto/rand"
	"encoding/hex"
)

// newID returns 16 random bytes in hex, for events without a sequence.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewSessionID returns a fresh session id.
func NewSessionID() string { return newID() }

// AppendSessionID appends a fresh session id (NewSessionID's form) to
// dst: the broker packs it with the session's other strings.
func AppendSessionID(dst []byte) []byte {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.AppendEncode(dst, b[:])
}
