package journal

import (
	"crypto/sha256"
	"encoding/base64"
)

// connMsgIDPrefix marks the digest form of a connection event's
// Nats-Msg-Id. No id of the earlier form can equal one of these: those
// were the event id itself, `<device>/<64 hex digits>` (at least 66
// bytes) or 32 hex digits (a refusal), never 24 bytes starting "c:".
const connMsgIDPrefix = "c:"

// connMsgIDLen is the length of ConnMsgID's result: the prefix and 16
// bytes in unpadded base64url. 24 bytes is one of the allocator's size
// classes, so the copy JetStream keeps of each id in its duplicate window
// takes 24 bytes instead of the 112 of a full event id (issue 21: ~380 k
// ids live at the end of a 30 s run at 5,000 events/s).
const connMsgIDLen = len(connMsgIDPrefix) + 22

// ConnMsgID is the Nats-Msg-Id of the connection event with id eventID:
// the first 16 bytes of SHA-256 over a domain tag and the id. It is a
// function of the event id alone, so every publish of one event — the
// publisher's retries after a lost ack or a leader change, which re-send
// the same Msg — carries the same Nats-Msg-Id and the stream stores the
// event once. (An event is published by the process that made it; a
// restart, a takeover or another cluster node makes a new event with a
// new sequence, so ids of the earlier form and these never describe the
// same event, and a rolling restart with both binaries needs nothing.)
//
// Collisions: two distinct events are stored as one only if their ids'
// 128-bit digests are equal while both are in the stream's duplicate
// window (dedupeWindow, 2 minutes). At 10,000 events/s that window holds
// n ≈ 1.2 M ids, so the chance of any equal pair within it is at most
// n²/2¹²⁹ ≈ 2·10⁻²⁷; SHA-256 makes a pair chosen on purpose (a device id
// picked to shadow another device's event) as hard as a second preimage.
// The payload keeps the full event id; only JetStream's dedupe sees this.
func ConnMsgID(eventID string) string {
	// Event ids are at most a 128-byte device id, '/' and 64 digits:
	// hashed from a buffer on the stack, with no allocation but the
	// result's.
	var in [256]byte
	b := append(in[:0], "tether.conn.msgid\x00"...)
	b = append(b, eventID...)
	sum := sha256.Sum256(b)
	var out [connMsgIDLen]byte
	copy(out[:], connMsgIDPrefix)
	base64.RawURLEncoding.Encode(out[len(connMsgIDPrefix):], sum[:16])
	return string(out[:])
}
