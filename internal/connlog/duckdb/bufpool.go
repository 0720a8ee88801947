//go:build cgo

package duckdb

import (
	"math/bits"
	"sync"
)

// Byte buffers kept between moves: the stage's frames and the Arrow
// loader's columns. Each move used to leave ~10 MB of them to the garbage
// collector and take as much new memory from the kernel (page faults,
// cleared pages); from the pool it reuses memory it touched a moment ago.
// The pool keeps at most poolMax bytes (a sync.Pool kept whatever the
// busiest move had used until two collections later: +120 MiB RSS at
// peak, measured), and the mover empties it when the stage is empty.

// poolMax bounds the bytes the pool keeps.
const poolMax = 32 << 20

var pool struct {
	mu    sync.Mutex
	free  [40][]*[]byte // by size class: free[i] has buffers of 1<<i bytes
	bytes int           // in free
}

// getBuf returns a buffer of n bytes (contents undefined) and capacity
// its size class.
func getBuf(n int) *[]byte {
	class := bits.Len(uint(max(n, 64) - 1))
	pool.mu.Lock()
	if l := pool.free[class]; len(l) > 0 {
		b := l[len(l)-1]
		pool.free[class] = l[:len(l)-1]
		pool.bytes -= cap(*b)
		pool.mu.Unlock()
		*b = (*b)[:n]
		return b
	}
	pool.mu.Unlock()
	s := make([]byte, n, 1<<class)
	return &s
}

// putBuf gives b back; nothing may use its memory after.
func putBuf(b *[]byte) {
	c := cap(*b)
	if c < 64 || c&(c-1) != 0 {
		return
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if pool.bytes+c > poolMax {
		return
	}
	class := bits.Len(uint(c - 1))
	pool.free[class] = append(pool.free[class], b)
	pool.bytes += c
}

// dropPool lets the garbage collector have every pooled buffer (the
// store is idle).
func dropPool() {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	clear(pool.free[:])
	pool.bytes = 0
}
