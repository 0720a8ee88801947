package registry

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// ETag renders a store revision the way IoT Hub renders device etags:
// base64 of the decimal number, unquoted.
func ETag(revision uint64) string {
	return base64.StdEncoding.EncodeToString(strconv.AppendUint(nil, revision, 10))
}

// unquoteETag strips the quotes (and a weak "W/" prefix) of an If-Match
// value; clients send `"<etag>"`, `<etag>` or `*`.
func unquoteETag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return s
}

// keyBytes is the size of generated keys; IoT Hub generates 32-byte keys
// (44 base64 characters).
const keyBytes = 32

// NewKey returns a fresh random shared access key (base64 of 32 bytes).
func NewKey() string {
	b := make([]byte, keyBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand docs)
	return base64.StdEncoding.EncodeToString(b)
}

// dotnetEpochTicks is 1970-01-01 in .NET ticks (100 ns since 0001-01-01).
const dotnetEpochTicks = 621355968000000000

// newGenerationID makes an 18-digit number like IoT Hub's ("637534345627501371",
// .NET ticks of the creation time) with random low digits, so a device
// deleted and re-created within the same instant still gets a new one.
func newGenerationID(now time.Time) string {
	ticks := uint64(now.UnixNano()/100) + dotnetEpochTicks
	var b [8]byte
	_, _ = rand.Read(b[:])
	ticks = ticks - ticks%10000 + binary.BigEndian.Uint64(b[:])%10000
	return strconv.FormatUint(ticks, 10)
}

// newChangeID is a random 128-bit hex id.
func newChangeID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// generationTime is when a device was created, read back from its
// generation id (to the millisecond); zero if the id does not say.
func generationTime(gen string) time.Time {
	ticks, err := strconv.ParseUint(gen, 10, 64)
	if err != nil || ticks < dotnetEpochTicks {
		return time.Time{}
	}
	ticks -= ticks % 10000 // the random low digits
	return time.Unix(0, int64(ticks-dotnetEpochTicks)*100).UTC()
}
