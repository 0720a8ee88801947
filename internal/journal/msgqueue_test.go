package journal

import (
	"errors"
	"strconv"
	"sync"
	"testing"
)

func popAll(t *testing.T, q *msgQueue) []string {
	t.Helper()
	var got []string
	for {
		m, ok, _ := q.pop()
		if !ok {
			return got
		}
		got = append(got, m.Subject)
	}
}

func TestMsgQueueKeepsOrderAcrossChunks(t *testing.T) {
	q := newMsgQueue(10 * chunkLen)
	next, popped := 0, 0
	// Uneven pushes and pops, so chunks fill, empty and are reused.
	for _, step := range []struct{ push, pop int }{{3*chunkLen + 5, chunkLen + 1}, {chunkLen, 2 * chunkLen}, {7, 1000}} {
		for range step.push {
			if err := q.push(Msg{Subject: strconv.Itoa(next)}, nil); err != nil {
				t.Fatal(err)
			}
			next++
		}
		for range step.pop {
			m, ok, closed := q.pop()
			if !ok {
				if closed {
					t.Fatal("closed without close")
				}
				break
			}
			if want := strconv.Itoa(popped); m.Subject != want {
				t.Fatalf("popped %s, want %s", m.Subject, want)
			}
			popped++
		}
	}
	if q.len() != 0 || popped != next {
		t.Fatalf("%d left, %d of %d popped", q.len(), popped, next)
	}
}

func TestMsgQueueFullWaitsForRoom(t *testing.T) {
	q := newMsgQueue(3)
	for i := range 3 {
		if err := q.push(Msg{Subject: strconv.Itoa(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	gaveUp := make(chan struct{})
	close(gaveUp)
	if err := q.push(Msg{Subject: "x"}, gaveUp); !errors.Is(err, ErrClosed) {
		t.Fatalf("push into a full queue with abort closed: %v, want ErrClosed", err)
	}
	// A push waiting for room goes in once a pop makes some.
	pushed := make(chan error)
	go func() { pushed <- q.push(Msg{Subject: "3"}, nil) }()
	if m, ok, _ := q.pop(); !ok || m.Subject != "0" {
		t.Fatalf("pop: %q %v", m.Subject, ok)
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	if got := popAll(t, q); len(got) != 3 || got[0] != "1" || got[2] != "3" {
		t.Fatalf("queue holds %v, want [1 2 3]", got)
	}
}

func TestMsgQueueClose(t *testing.T) {
	q := newMsgQueue(2)
	_ = q.push(Msg{Subject: "a"}, nil)
	_ = q.push(Msg{Subject: "b"}, nil)
	abort := make(chan struct{})
	waiting := make(chan error)
	go func() { waiting <- q.push(Msg{Subject: "c"}, abort) }()
	q.close()
	close(abort) // as Publisher.Close does: closing, then the queue
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting push after close: %v", err)
	}
	if err := q.push(Msg{Subject: "d"}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("push after close: %v", err)
	}
	// What was queued before the close still comes out, then closed.
	if got := popAll(t, q); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("after close: %v", got)
	}
	if _, ok, closed := q.pop(); ok || !closed {
		t.Fatalf("empty closed queue: ok %v closed %v", ok, closed)
	}
}

// TestMsgQueueConcurrentPushers: many pushers into a small queue, one
// popper that waits on ready as the publisher does; every message comes
// out once, each pusher's in its order.
func TestMsgQueueConcurrentPushers(t *testing.T) {
	const pushers, each = 8, 3000
	q := newMsgQueue(50)
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := q.push(Msg{Subject: strconv.Itoa(p), Data: []byte(strconv.Itoa(i))}, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); q.close() }()
	next := make([]int, pushers)
	total := 0
	for {
		m, ok, closed := q.pop()
		if !ok {
			if closed {
				break
			}
			<-q.ready
			continue
		}
		p, _ := strconv.Atoi(m.Subject)
		if i, _ := strconv.Atoi(string(m.Data)); i != next[p] {
			t.Fatalf("pusher %d: got message %d, want %d", p, i, next[p])
		}
		next[p]++
		total++
	}
	if total != pushers*each {
		t.Fatalf("popped %d, want %d", total, pushers*each)
	}
}
