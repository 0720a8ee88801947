package journal

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// fanRecorder is a reader that keeps what it was handed.
type fanRecorder struct {
	mu     sync.Mutex
	seqs   []uint64
	ids    []string
	caught int // empty batches (the stream's end)
	bad    int
}

func (r *fanRecorder) take(b FanoutBatch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(b.Events) == 0 {
		r.caught++
	}
	for _, e := range b.Events {
		r.seqs = append(r.seqs, e.Seq)
		if e.Event == nil {
			r.bad++
			r.ids = append(r.ids, "")
			continue
		}
		r.ids = append(r.ids, e.Event.ID)
	}
}

func (r *fanRecorder) wait(t *testing.T, n int) []uint64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]uint64(nil), r.seqs...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("handed %d events, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func publishConn(t *testing.T, j *Journal, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		ev := presence.ConnectionEvent{ID: fmt.Sprintf("ev-%d", i), Kind: presence.Connected, DeviceID: fmt.Sprintf("d%d", i%7),
			Hub: "h", Time: time.Date(2026, 12, 6, 23, 0, i, 0, time.UTC)}
		data, err := EncodeConnectionEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.JS.Publish(context.Background(), ConnSubject(ev.DeviceID, string(ev.Kind)), data); err != nil {
			t.Fatal(err)
		}
	}
}

func wantSeqs(t *testing.T, name string, got []uint64, from, to uint64) {
	t.Helper()
	if len(got) != int(to-from+1) {
		t.Fatalf("%s: handed %v, want %d..%d", name, got, from, to)
	}
	for i, s := range got {
		if s != from+uint64(i) {
			t.Fatalf("%s: handed %v, want %d..%d in order, each once", name, got, from, to)
		}
	}
}

// Readers with their own positions are each handed every event after
// theirs, once and in order; one added while the fanout runs, behind it,
// gets the events before; the journal's consumer is made only once per
// start, and every event decoded once.
func TestConnFanoutPositions(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	publishConn(t, j, 0, 30)
	// An undecodable event is handed on with its error.
	if _, err := j.JS.Publish(context.Background(), ConnSubject("d1", "connected"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	f := NewConnFanout(j.JS, FanoutOptions{PollEvery: 10 * time.Millisecond, IdleCheck: time.Hour})
	var a, b, c fanRecorder
	offA := f.Add(0, a.take)
	f.Add(20, b.take)
	f.Start()
	defer f.Stop(context.Background())
	wantSeqs(t, "reader from 0", a.wait(t, 31), 1, 31)
	wantSeqs(t, "reader from 20", b.wait(t, 11), 21, 31)
	a.mu.Lock()
	if a.bad != 1 || a.ids[30] != "" || a.ids[0] != "ev-0" {
		t.Fatalf("reader from 0: %d undecodable (want 1), ids %v", a.bad, a.ids)
	}
	a.mu.Unlock()

	// Caught up: the fanout waits for a publish, and one wakes it.
	deadline := time.Now().Add(10 * time.Second)
	for !f.Watching() {
		if time.Now().After(deadline) {
			t.Fatal("a caught-up fanout does not wait for a publish")
		}
		time.Sleep(5 * time.Millisecond)
	}
	publishConn(t, j, 30, 5)
	wantSeqs(t, "reader from 0", a.wait(t, 36), 1, 36)

	// A reader added late, behind: the fanout reads again from its
	// position; the others are not handed anything twice.
	f.Add(10, c.take)
	wantSeqs(t, "reader added at 10", c.wait(t, 26), 11, 36)
	publishConn(t, j, 35, 3)
	wantSeqs(t, "reader from 0", a.wait(t, 39), 1, 39)
	wantSeqs(t, "reader from 20", b.wait(t, 19), 21, 39)
	wantSeqs(t, "reader added at 10", c.wait(t, 29), 11, 39)
	a.mu.Lock()
	if a.caught == 0 {
		t.Fatal("a caught-up reader was never told (empty batch)")
	}
	a.mu.Unlock()

	// A removed reader is not called again.
	offA()
	a.mu.Lock()
	n := len(a.seqs)
	a.mu.Unlock()
	publishConn(t, j, 38, 2)
	b.wait(t, 21)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seqs) != n {
		t.Fatalf("a removed reader was handed %d more events", len(a.seqs)-n)
	}
}

// A consumer that goes away (an external server restarted, an operator
// deleted it) is made again after the last event handed out: nothing is
// lost or handed twice.
func TestConnFanoutConsumerLost(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	publishConn(t, j, 0, 10)
	f := NewConnFanout(j.JS, FanoutOptions{PollEvery: 10 * time.Millisecond, IdleCheck: 50 * time.Millisecond})
	var a fanRecorder
	f.Add(0, a.take)
	f.Start()
	defer f.Stop(context.Background())
	a.wait(t, 10)
	ctx := context.Background()
	st, err := j.JS.Stream(ctx, StreamConn)
	if err != nil {
		t.Fatal(err)
	}
	for name := range st.ConsumerNames(ctx).Name() {
		if err := st.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	publishConn(t, j, 10, 10)
	wantSeqs(t, "reader", a.wait(t, 20), 1, 20)
	time.Sleep(100 * time.Millisecond)
	wantSeqs(t, "reader", a.wait(t, 20), 1, 20)
}

// An idle fanout's fallback pulls space out (IdleCheck, twice that, … up
// to IdleMax) instead of coming every IdleCheck; a publish still wakes it
// at once, and the spacing starts again from IdleCheck after events.
func TestConnFanoutIdlePullsSpaceOut(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	const check, most = 5 * time.Millisecond, 40 * time.Millisecond
	f := NewConnFanout(j.JS, FanoutOptions{PollEvery: time.Millisecond, IdleCheck: check, IdleMax: most})
	var a fanRecorder
	f.Add(0, a.take)
	f.Start()
	defer f.Stop(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for !f.Watching() {
		if time.Now().After(deadline) {
			t.Fatal("a caught-up fanout does not wait for a publish")
		}
		time.Sleep(time.Millisecond)
	}
	empty := func() int { a.mu.Lock(); defer a.mu.Unlock(); return a.caught }
	// 80 × IdleCheck: at most 4 + 80 × IdleCheck / IdleMax (+1) empty
	// pulls with the spacing (a slower machine only makes fewer), 80
	// without it.
	n0 := empty()
	time.Sleep(80 * check)
	if n := empty() - n0; n > 20 {
		t.Fatalf("%d empty pulls in 80 × IdleCheck", n)
	}
	publishConn(t, j, 0, 3)
	wantSeqs(t, "after the idle pulls", a.wait(t, 3), 1, 3)
}
