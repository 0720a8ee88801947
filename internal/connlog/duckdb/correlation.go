//go:build cgo

package duckdb

import (
	"strings"

	"github.com/tether-hub/tether/internal/connlog"
)

// CorrelationId is not stored when it is what the presence tracker makes
// of a connection event, DeviceId + "/" + SequenceNumber (every
// Connections record): corrDerived stands for it, and the view and Find
// put it back. Stored, it was the second largest column (~18 bytes a
// record of high-entropy text the DeviceId and SequenceNumber columns
// already hold). Other values are stored as they are, behind corrRaw
// when they start with \x01 themselves.
const (
	corrDerived = "\x01"
	corrRaw     = "\x01\x01"
)

// packCorrelation is what the CorrelationId column stores for r.
func packCorrelation(r *connlog.Record) string {
	c := r.CorrelationID
	if c != "" && len(c) == len(r.DeviceID)+1+len(r.SequenceNumber) &&
		strings.HasPrefix(c, r.DeviceID) && c[len(r.DeviceID)] == '/' && strings.HasSuffix(c, r.SequenceNumber) {
		return corrDerived
	}
	if strings.HasPrefix(c, "\x01") {
		return corrRaw + c
	}
	return c
}

// unpackCorrelation is r's CorrelationId from the stored value c and r's
// DeviceID and SequenceNumber.
func unpackCorrelation(c string, r *connlog.Record) string {
	switch {
	case c == corrDerived:
		return r.DeviceID + "/" + r.SequenceNumber
	case strings.HasPrefix(c, corrRaw):
		return c[len(corrRaw):]
	}
	return c
}

// correlationSQL is the SQL expression that rebuilds CorrelationId from
// the stored column src, as unpackCorrelation does.
func correlationSQL(src string) string {
	return "CASE WHEN " + src + " = chr(1) THEN " + quote(connlog.ColDeviceID) + " || '/' || " + quote(connlog.ColSequenceNumber) +
		" WHEN starts_with(" + src + ", chr(1) || chr(1)) THEN substr(" + src + ", 3) ELSE " + src + " END"
}
