//go:build cgo

package duckdb

import (
	"math/bits"
	"sync"
)

// Byte buffers kept between moves: the stage's frames and the Arrow
// loader's columns. Each move used to leave ~10 MB of them to the garbage
// collector and take as much new memory from the kernel (page faults,
// cleared pages), about a tenth of its CPU; from the pools it reuses
// memory it touched a moment ago. sync.Pool lets go of what stays unused
// over two collections, so an idle store holds none.

// bufPools hold the buffers by size class: pool i has buffers of 1<<i
// bytes.
var bufPools [40]sync.Pool

// getBuf returns a buffer of n bytes (contents undefined) and capacity
// its size class.
func getBuf(n int) *[]byte {
	class := bits.Len(uint(max(n, 64) - 1))
	if b, ok := bufPools[class].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	s := make([]byte, n, 1<<class)
	return &s
}

// putBuf gives b back; nothing may use its memory after.
func putBuf(b *[]byte) {
	if c := cap(*b); c >= 64 && c&(c-1) == 0 {
		bufPools[bits.Len(uint(c-1))].Put(b)
	}
}
