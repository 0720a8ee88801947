package presence

import "time"

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

// FormatSequence renders the 64-digit sequence number. It runs once per
// connection change, so it avoids fmt.
func FormatSequence(epoch uint64, node uint32, counter uint64) string {
	var b [64]byte
	for i := range 16 {
		b[i] = '0'
	}
	putHex(b[16:32], epoch)
	putHex(b[32:40], uint64(node))
	for i := 40; i < 48; i++ { // the counter's top 32 of 96 bits: always 0
		b[i] = '0'
	}
	putHex(b[48:64], counter)
	return string(b[:])
}

// putHex writes v as upper-case hex right-aligned in dst, zero-padded.
func putHex(dst []byte, v uint64) {
	const digits = "0123456789ABCDEF"
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = digits[v&15]
		v >>= 4
	}
}
