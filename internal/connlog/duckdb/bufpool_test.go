//go:build cgo

package duckdb

import "testing"

// Every size gets a buffer at least as large and at most a quarter
// larger (above 64 bytes), of a class putBuf takes back; the classes are
// distinct and grow with the size.
func TestBufferClasses(t *testing.T) {
	lastClass, lastSize := -1, 0
	for n := 1; n < 1<<24; n += 1 + n/7 {
		class, size := classOf(n)
		if size < n || n > 64 && size > n+n/4 {
			t.Fatalf("classOf(%d) = %d bytes", n, size)
		}
		if c2, s2 := classOf(size); c2 != class || s2 != size {
			t.Fatalf("classOf(%d) = class %d of %d bytes, but classOf(%d) = class %d of %d", n, class, size, size, c2, s2)
		}
		if class < lastClass || class == lastClass && size != lastSize || class > lastClass && size <= lastSize {
			t.Fatalf("classOf(%d) = class %d of %d bytes after class %d of %d", n, class, size, lastClass, lastSize)
		}
		if class >= len(pool.free) {
			t.Fatalf("classOf(%d) = class %d, the pool has %d", n, class, len(pool.free))
		}
		lastClass, lastSize = class, size
	}
	b := getBuf(700_000)
	if len(*b) != 700_000 || cap(*b) < 700_000 {
		t.Fatalf("getBuf(700000): len %d cap %d", len(*b), cap(*b))
	}
	(*b)[0], (*b)[699_999] = 1, 2
	putBuf(b)
	dropPool()
}
