package connlog

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// ItemID is the _ItemId of the n-th record (from 0) made from the journal
// entry sourceID of category, which happened at t: a GUID-shaped,
// name-based id, so the same entry always gives the same ids and a
// redelivered entry is recognised by the store.
//
// Layout (RFC 9562 version 7): the first 48 bits are t in Unix
// milliseconds (0 before 1970), so ids sort by time and a store's unique
// index on _ItemId grows at its end like the time indexes instead of
// taking inserts at random places; the remaining 74 bits (after the
// version and variant) are SHA-256 of the category, sourceID and n. Where
// version 7 has random bits this id has the hash, which is what makes it
// stable.
//
// Until November 2026 ids were version 8 (the hash alone). Stored records
// keep those; the table's schema did not change. Only an entry that was
// stored but not acked when an older Tether stopped, and is delivered
// again after the upgrade, is stored a second time under its new id.
func ItemID(category, sourceID string, n int, t time.Time) string {
	var in [256]byte
	b := append(in[:0], "tether/connlog\x00"...)
	b = append(b, category...)
	b = append(b, 0)
	b = append(b, sourceID...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(n), 10)
	sum := sha256.Sum256(b)

	var u [16]byte
	ms := max(t.UnixMilli(), 0)
	u[0], u[1], u[2] = byte(ms>>40), byte(ms>>32), byte(ms>>24)
	u[3], u[4], u[5] = byte(ms>>16), byte(ms>>8), byte(ms)
	copy(u[6:], sum[:10])
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant

	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}
