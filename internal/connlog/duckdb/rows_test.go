//go:build cgo

package duckdb

import (
	"math/rand/v2"
	"testing"
)

// TestSharedTimes: the times that occur more than once, found by counting
// only the back-steps', are those a count of every time finds.
func TestSharedTimes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		n := rng.IntN(300)
		times := make([]int64, n)
		now := int64(rng.IntN(1000)) - 500
		for i := range times {
			switch x := rng.IntN(10); {
			case x < 6 || i == 0:
				now += int64(rng.IntN(5) + 1)
				times[i] = now
			case x < 8:
				times[i] = now - int64(rng.IntN(20)) // a back-step, maybe onto an earlier time
			default:
				times[i] = times[rng.IntN(i)] // a repeat of an earlier record's
			}
		}
		want := map[int64]int{}
		for _, x := range times {
			want[x]++
		}
		got := sharedTimes(times)
		for x, c := range want {
			if _, ok := got[x]; ok != (c > 1) {
				t.Fatalf("round %d: time %d occurs %d times; in sharedTimes: %v", round, x, c, ok)
			}
		}
		for x := range got {
			if want[x] < 2 {
				t.Fatalf("round %d: sharedTimes has %d, which occurs %d times", round, x, want[x])
			}
		}
	}
	if sharedTimes([]int64{1, 2, 3}) != nil {
		t.Fatal("increasing times share one")
	}
}
