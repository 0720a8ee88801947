package throttle

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 23, 59, 0, 0, time.UTC)

func TestBucketShapesThenRefuses(t *testing.T) {
	b := NewBucket(10, 5, t0) // 10/s, 5 saved
	for i := range 5 {
		if w, ok := b.Reserve(t0, 0); !ok || w != 0 {
			t.Fatalf("token %d of the burst: %v %v", i, w, ok)
		}
	}
	if _, ok := b.Reserve(t0, 0); ok {
		t.Fatal("a sixth token without waiting")
	}
	// With a queue of 300 ms, the next three are 100, 200 and 300 ms away.
	for i := 1; i <= 3; i++ {
		w, ok := b.Reserve(t0, 300*time.Millisecond)
		if !ok || w != time.Duration(i)*100*time.Millisecond {
			t.Fatalf("reservation %d: wait %v %v", i, w, ok)
		}
	}
	if w, ok := b.Reserve(t0, 300*time.Millisecond); ok || w != 400*time.Millisecond {
		t.Fatalf("beyond the queue: %v %v", w, ok)
	}
	// Half a second later the reservations are paid off and 2 are free.
	later := t0.Add(500 * time.Millisecond)
	for i := range 2 {
		if w, ok := b.Reserve(later, 0); !ok || w != 0 {
			t.Fatalf("after refilling, token %d: %v %v", i, w, ok)
		}
	}
	if _, ok := b.Reserve(later, 0); ok {
		t.Fatal("refilled more than the rate")
	}
	// Never more than the burst, however long idle.
	idle := t0.Add(time.Hour)
	n := 0
	for ; ; n++ {
		if _, ok := b.Reserve(idle, 0); !ok {
			break
		}
	}
	if n != 5 {
		t.Fatalf("after an hour idle, %d tokens; the burst is 5", n)
	}
	var none *Bucket
	if _, ok := none.Reserve(t0, 0); !ok || NewBucket(0, 5, t0) != nil {
		t.Fatal("a zero rate limits")
	}
}

func TestKeyedAndSweep(t *testing.T) {
	k := NewKeyed(1, 2)
	for _, key := range []string{"a", "a", "b"} {
		if _, ok := k.Reserve(key, t0, 0); !ok {
			t.Fatalf("%s refused within its burst", key)
		}
	}
	if _, ok := k.Reserve("a", t0, 0); ok {
		t.Fatal("a: third token at once with a burst of 2")
	}
	if left := k.Sweep(t0.Add(500 * time.Millisecond)); left != 2 {
		t.Fatalf("sweep half a second later kept %d buckets, want 2 (neither full)", left)
	}
	if left := k.Sweep(t0.Add(1500 * time.Millisecond)); left != 1 {
		t.Fatalf("b is full again after 1 s: %d left, want 1", left)
	}
	if left := k.Sweep(t0.Add(3 * time.Second)); left != 0 {
		t.Fatalf("%d left after 3 s", left)
	}
}

func TestKeyedConcurrent(t *testing.T) {
	k := NewKeyed(1, 100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := map[string]int{}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				key := fmt.Sprint("d", (g+i)%4)
				if _, ok := k.Reserve(key, t0, 0); ok {
					mu.Lock()
					granted[key]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for key, n := range granted {
		if n != 100 {
			t.Errorf("%s granted %d, want its burst of 100", key, n)
		}
	}
}

func TestGate(t *testing.T) {
	g := NewGate(2)
	stop := make(chan struct{})
	if !g.Acquire(0, stop) || !g.Acquire(0, stop) {
		t.Fatal("the first two slots")
	}
	if g.Acquire(0, stop) {
		t.Fatal("a third slot of two")
	}
	got := make(chan bool)
	go func() { got <- g.Acquire(time.Minute, stop) }()
	for g.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	g.Release()
	if !<-got {
		t.Fatal("a waiter did not get the released slot")
	}
	go func() { got <- g.Acquire(time.Minute, stop) }()
	for g.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	if <-got {
		t.Fatal("a waiter got a slot after stop")
	}
	if g.InProgress() != 2 || g.Cap() != 2 {
		t.Fatalf("in progress %d of %d", g.InProgress(), g.Cap())
	}
	if g.Acquire(10*time.Millisecond, make(chan struct{})) {
		t.Fatal("a slot after the wait ran out")
	}
}

func TestDailyQuota(t *testing.T) {
	q := NewDailyQuota(3)
	for i := range 3 {
		if !q.Take(t0) {
			t.Fatalf("message %d of 3", i)
		}
	}
	if q.Take(t0) || q.Used(t0) != 3 {
		t.Fatal("a fourth message of a quota of 3")
	}
	midnight := t0.Add(time.Minute) // 00:00 UTC the next day
	if q.Used(midnight) != 0 || !q.Take(midnight) {
		t.Fatal("the quota did not reset at 00:00 UTC")
	}
	q.Seed(midnight, 2)
	if q.Used(midnight) != 2 || !q.Take(midnight) || q.Take(midnight) {
		t.Fatalf("seeded with 2: used %d", q.Used(midnight))
	}
}

func TestLimiter(t *testing.T) {
	l, err := New(Limits{ConnectRate: 10, ConnectBurst: 1, ConnectQueue: 150 * time.Millisecond,
		AddressRate: 1, AddressBurst: 3, DeviceRate: 1, DeviceBurst: 1,
		MessageRate: 1, MessageBurst: 1, HubMessageRate: 100, MessageQueue: time.Second, DailyQuota: 3}, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Hub-wide: one now, one in 100 ms, then refused (the next is 200 ms
	// away). No plain-TCP rate of its own: a plain connect takes a turn.
	if w, s := l.Connection("10.0.0.1", ConnectTLS, t0); w != 0 || s != ScopeNone {
		t.Fatalf("first: %v %s", w, s)
	}
	if w, s := l.Connection("10.0.0.2", ConnectPlain, t0); w != 100*time.Millisecond || s != ScopeNone {
		t.Fatalf("second: %v %s", w, s)
	}
	if _, s := l.Connection("10.0.0.3", ConnectTLS, t0); s != ScopeHub {
		t.Fatalf("third: %s", s)
	}
	// Per address (1/s, 3 saved): three more 200 ms apart, then it is
	// refused, before the hub-wide rate (which would admit it) is asked.
	later := t0.Add(time.Second)
	for i := range 3 {
		if _, s := l.Connection("10.0.0.1", ConnectTLS, later.Add(time.Duration(i)*200*time.Millisecond)); s != ScopeNone {
			t.Fatalf("connection %d from one address: %s", i, s)
		}
	}
	if _, s := l.Connection("10.0.0.1", ConnectTLS, later.Add(600*time.Millisecond)); s != ScopeAddress {
		t.Fatalf("fourth from one address: %s", s)
	}
	if !l.DeviceConnect("d1", t0) || l.DeviceConnect("d1", t0) || !l.DeviceConnect("d2", t0) {
		t.Fatal("per-device connects")
	}
	// Messages: the second waits a second, the third is refused; the
	// quota ends the fourth, later.
	if w, s := l.Message("d1", t0); w != 0 || s != ScopeNone {
		t.Fatalf("message 1: %v %s", w, s)
	}
	if w, s := l.Message("d1", t0); w != time.Second || s != ScopeNone {
		t.Fatalf("message 2: %v %s", w, s)
	}
	if _, s := l.Message("d1", t0); s != ScopeDevice {
		t.Fatalf("message 3: %s", s)
	}
	if _, s := l.Message("d2", t0); s != ScopeNone {
		t.Fatalf("another device: %s", s)
	}
	if _, s := l.Message("d3", t0); s != ScopeQuota || l.QuotaUsed(t0) != 3 {
		t.Fatalf("over the quota: %s, used %d", s, l.QuotaUsed(t0))
	}
	var off *Limiter
	if w, s := off.Connection("x", ConnectPlain, t0); w != 0 || s != ScopeNone || !off.DeviceConnect("d", t0) || !off.Handshake(nil) {
		t.Fatal("a nil limiter limits")
	}
}

func TestLimitsValidate(t *testing.T) {
	err := Limits{ConnectRate: -1, PlainConnectRate: -3, DeviceBurst: -2, MessageQueue: -time.Second, DailyQuota: -5}.Validate()
	for _, want := range []string{"connect rate -1", "plain connect rate -3", "device burst -2", "queue waits", "daily quota -5"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	if err := (Limits{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// The calibration measures a handshake's public-key work for any key kind
// and turns it into rates; which kind costs more is a timing and is not
// asserted (a loaded machine can reorder them).
func TestDefaultConnectRates(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, key := range []crypto.Signer{ec, rsaKey} {
		s := DefaultConnectRates(key, 2)
		if s.TLSCost <= TLSConnectOverhead+PlainConnectCost || s.TLSRate <= 0 || s.TLSRate != connectRate(s.TLSCost, 2) ||
			s.PlainCost != PlainConnectCost || s.PlainRate != connectRate(PlainConnectCost, 2) {
			t.Fatalf("%T: %+v", key, s)
		}
	}
	if r2, r4 := connectRate(time.Millisecond, 2), connectRate(time.Millisecond, 4); r2 != 1000 || r4 != 2*r2 {
		t.Fatalf("1 ms per connect: 2 cores %.0f/s, 4 cores %.0f/s", r2, r4)
	}
	if r := connectRate(time.Millisecond, 0); r != 500 {
		t.Fatalf("0 cores counted as %v/1000 of one", r)
	}
}

// A caller that waits for each token (one device's reader) is refused
// once it has been over the rate without a break for maxViolation; one
// that slows down starts afresh.
func TestShapeRefusesLongViolations(t *testing.T) {
	k := NewKeyed(10, 1)
	now := t0
	served := 0
	for {
		w, ok := k.Shape("d", now, time.Second, 500*time.Millisecond)
		if !ok {
			break
		}
		served++
		if w > 100*time.Millisecond {
			t.Fatalf("a serial caller waited %v, more than one token's worth", w)
		}
		now = now.Add(w) // the reader waits, then the next message is there
	}
	if served < 6 || served > 7 {
		t.Fatalf("%d messages served before the refusal; 1 free + ~5 in 500 ms expected", served)
	}
	// Quiet long enough for a free token: the violation is over.
	now = now.Add(200 * time.Millisecond)
	if w, ok := k.Shape("d", now, time.Second, 500*time.Millisecond); !ok || w != 0 {
		t.Fatalf("after a pause: %v %v", w, ok)
	}
}
