package presence

import (
	"fmt"
	"time"
)

// Sequence numbers are 64 upper-case hex digits, compared as strings
// (reference/iothub-facts.md §1.3). Tether's layout:
//
//	16 zero digits | 16-digit epoch (Windows FILETIME of hub start) | 8-digit node | 24-digit per-device counter
//
// The epoch is made strictly larger at every start (see journal.NextEpoch),
// so a device's numbers keep increasing across restarts without writing
// anything per event.

// filetimeOffset is the number of 100 ns intervals between 1601-01-01 and
// the Unix epoch.
const filetimeOffset = 116444736000000000

// Filetime converts t to a Windows FILETIME.
func Filetime(t time.Time) uint64 {
	return uint64(t.UnixNano()/100) + filetimeOffset
}

// FormatSequence renders the 64-digit sequence number.
func FormatSequence(epoch uint64, node uint32, counter uint64) string {
	return fmt.Sprintf("0000000000000000%016X%08X%024X", epoch, node, counter)
}
