package delivery

import (
	"reflect"
	"runtime"
	"testing"
	"time"
)

// fullAckBook is a book (no connection: only its maps) holding
// ackRecentMax answered acknowledgements of two streams, the most it keeps.
func fullAckBook() *ackBook {
	b := bareAckBook()
	now := time.Now()
	for i := range uint64(ackRecentMax) {
		k := ackKey{[2]string{"TETHER_CONN", "TETHER_OPS"}[i%2], i + 1}
		b.pending[k] = &ackState{}
		b.answered(k, now)
	}
	return b
}

// bareAckBook is a book without a connection: its maps only (the answered
// ones' made by reflection, so the benchmark also builds on the book as it
// was before its keys lost their pointers, to compare).
func bareAckBook() *ackBook {
	b := &ackBook{linger: time.Minute, unasked: map[string]ackKey{}, pending: map[ackKey]*ackState{}}
	r := reflect.ValueOf(&b.recent).Elem()
	r.Set(reflect.MakeMap(r.Type()))
	return b
}

// The answered acknowledgements of several streams are told apart, the
// oldest are forgotten past ackRecentMax, and a copy of an event is
// recognised only while its acknowledgement is remembered.
func TestAckBookRemembersAnsweredPerStream(t *testing.T) {
	b := bareAckBook()
	now := time.Now()
	answer := func(k ackKey) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.pending[k] = &ackState{}
		b.answered(k, now)
	}
	known := func(k ackKey) bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		_, ok := b.recent[b.recentKey(k)]
		return ok
	}
	answer(ackKey{"A", 1})
	answer(ackKey{"B", 2})
	for _, c := range []struct {
		k    ackKey
		want bool
	}{{ackKey{"A", 1}, true}, {ackKey{"B", 2}, true}, {ackKey{"A", 2}, false}, {ackKey{"B", 1}, false}, {ackKey{"C", 1}, false}} {
		if got := known(c.k); got != c.want {
			t.Errorf("%v remembered: %v, want %v", c.k, got, c.want)
		}
	}
	for i := range uint64(ackRecentMax) {
		answer(ackKey{"B", 100 + i})
	}
	if known(ackKey{"A", 1}) || known(ackKey{"B", 2}) {
		t.Error("the oldest answered acknowledgements kept past ackRecentMax")
	}
	if !known(ackKey{"B", 100}) || !known(ackKey{"B", 99 + ackRecentMax}) {
		t.Error("the newest ackRecentMax answered acknowledgements not all kept")
	}
	b.mu.Lock()
	n := len(b.recent)
	b.mu.Unlock()
	if n != ackRecentMax {
		t.Errorf("%d answered acknowledgements kept, want %d", n, ackRecentMax)
	}
}

// BenchmarkAckBookFullGC: a full GC with a full book live (at 5,000
// events/s every runner's book is full from ~13 s on). Compare with the
// same loop on an empty heap; the difference is the book's marking.
func BenchmarkAckBookFullGC(b *testing.B) {
	book := fullAckBook()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(book)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
}
