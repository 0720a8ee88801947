//go:build cgo && !unix

package duckdb

// mapBytes is n bytes for a buffer (bufpool.go): on the Go heap where
// there is no mmap.
func mapBytes(n int) []byte { return make([]byte, n) }

// unmapBytes leaves b to the garbage collector.
func unmapBytes([]byte) {}
