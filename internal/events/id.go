package events

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
)

// idNamespace is the UUID namespace of Tether event ids (a random v4 UUID
// fixed here; changing it changes every id).
var idNamespace = [16]byte{0x6b, 0x1e, 0x4f, 0x0a, 0x3c, 0x52, 0x4d, 0x8e, 0x9a, 0x41, 0x27, 0x0f, 0xd3, 0x65, 0xc8, 0x19}

// Source kinds in event ids.
const (
	sourceConn      = "conn"
	sourceRegistry  = "registry"
	sourceTelemetry = "telemetry"
)

// eventID is the id of the event made from a source record: a version-5
// UUID of (hub, kind, id), so the same record always gives the same event
// id and records of different hubs or kinds never share one.
func eventID(hub, kind, id string) string {
	h := sha1.New()
	h.Write(idNamespace[:])
	h.Write([]byte(hub))
	h.Write([]byte{0})
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(id))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return formatUUID(u)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return formatUUID(u)
}

func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}
