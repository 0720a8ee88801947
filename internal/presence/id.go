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
