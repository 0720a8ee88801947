//go:build cgo && unix

package duckdb

import "syscall"

// mapBytes is n bytes of anonymous memory outside the Go heap
// (bufpool.go).
func mapBytes(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		// As the Go heap does when the kernel refuses memory.
		panic("connlog/duckdb: mmap of a buffer: " + err.Error())
	}
	return b
}

// unmapBytes returns what mapBytes gave.
func unmapBytes(b []byte) {
	if err := syscall.Munmap(b); err != nil {
		panic("connlog/duckdb: munmap of a buffer: " + err.Error())
	}
}
