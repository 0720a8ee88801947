//go:build cgo

package duckdb

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// Byte buffers kept between moves: the stage's frames and the Arrow
// loader's columns. They are the store's largest memory (the staged
// batches and a move's columns: ~250 MiB at the peak of a 2M-record run,
// measured), and they live outside the Go heap (bufmem_unix.go: mmap),
// for two reasons measured in logbench's memory split:
//   - on the Go heap the collector lets the heap grow to twice what is
//     live (GOGC 100) before it collects: 250 MiB of buffers made a Go
//     heap of ~650 MiB, more than DuckDB's own memory;
//   - a buffer given back beyond what the pool keeps is returned to the
//     kernel at once (munmap), not when a later collection and the
//     scavenger get to it.
// The pool keeps at most poolLimit bytes and is emptied when the stage is
// (the mover, idle). A buffer is the caller's until putBuf; nothing may
// read it after (its memory may be unmapped): the records decoded from a
// frame are forgotten before their frame goes back (moveUpTo).

// poolLimit bounds the bytes the pool keeps: at least what a store's
// staged batches and a move's columns may hold at once (keepPooled), so
// that a busy store's buffers stay mapped. With a fixed 32 MiB, half of a
// stage at its bound (64 MiB at the default budget, where queries beside
// the appends move it every second) was unmapped after each move and
// mapped again by the next Appends: a page fault and a page cleared
// every 4 KiB, 4 % of logbench's CPU at 10M records. The peak is the
// same either way (those buffers are in use at once); an idle store's
// pool is emptied.
var poolLimit atomic.Int64

func init() { poolLimit.Store(32 << 20) }

// keepPooled raises poolLimit to n bytes.
func keepPooled(n int64) {
	for {
		old := poolLimit.Load()
		if n <= old || poolLimit.CompareAndSwap(old, n) {
			return
		}
	}
}

var pool struct {
	mu    sync.Mutex
	free  [160][]*[]byte // by size class (classOf)
	bytes int            // in free
}

// mapped is the bytes of buffers made and not unmapped (BufferBytes).
var mapped atomic.Int64

// BufferBytes is the memory of the store's buffers outside the Go heap
// (staged batches, a move's columns and the pool), for memory reports.
func BufferBytes() int64 { return mapped.Load() }

// classOf is the size class of an n-byte buffer: its index and size.
// Sizes are 64 bytes and, above, the multiples of an eighth of the power
// of two below n (n rounded up by at most a quarter): a frame of 700 KB
// took a 1 MiB buffer with classes at the powers of two.
func classOf(n int) (int, int) {
	if n <= 64 {
		return 0, 64
	}
	b := bits.Len(uint(n - 1)) // 2^(b-1) < n ≤ 2^b
	step := 1 << (b - 3)
	q := (n + step - 1) / step // 5..8
	return (b-6)*4 + q - 4, q * step
}

// getBuf returns a buffer of n bytes (contents undefined) and capacity
// its size class.
func getBuf(n int) *[]byte {
	class, size := classOf(n)
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
	s := mapBytes(size)
	mapped.Add(int64(size))
	s = s[:n]
	return &s
}

// putBuf gives b, a buffer of getBuf, back; nothing may use its memory
// after.
func putBuf(b *[]byte) {
	c := cap(*b)
	class, size := classOf(c)
	if size != c {
		panic("connlog/duckdb: putBuf of a buffer getBuf did not make")
	}
	pool.mu.Lock()
	if int64(pool.bytes+c) <= poolLimit.Load() {
		pool.free[class] = append(pool.free[class], b)
		pool.bytes += c
		pool.mu.Unlock()
		return
	}
	pool.mu.Unlock()
	release(b)
}

// release returns b's memory to the kernel.
func release(b *[]byte) {
	mapped.Add(-int64(cap(*b)))
	unmapBytes((*b)[:cap(*b)])
	*b = nil
}

// dropPool returns every pooled buffer's memory (the store is idle).
func dropPool() {
	pool.mu.Lock()
	var all []*[]byte
	for i, l := range pool.free {
		all = append(all, l...)
		pool.free[i] = nil
	}
	pool.bytes = 0
	pool.mu.Unlock()
	for _, b := range all {
		release(b)
	}
}
