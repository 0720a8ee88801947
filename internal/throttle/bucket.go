package throttle

import (
	"hash/maphash"
	"sync"
	"time"
)

// state is one token bucket's level: tokens at last (Unix nanoseconds).
// Tokens go below zero for reservations a caller waits for. owedSince is
// when the bucket was last found without a free token, 0 once one was
// free again: how long the limit has been violated without a break.
type state struct {
	tokens    float64
	last      int64
	owedSince int64
}

// reserve refills s to now and takes cost tokens if they are there now,
// or will be within maxWait while the limit has been violated for no
// longer than maxViolation; it returns the wait. Nothing is taken when it
// refuses. A cost of 0 is always granted at once.
func (s *state) reserve(cost, rate, burst float64, now int64, maxWait, maxViolation time.Duration) (time.Duration, bool) {
	if cost <= 0 {
		return 0, true
	}
	s.refill(rate, burst, now)
	if s.tokens >= cost {
		s.tokens -= cost
		s.owedSince = 0
		return 0, true
	}
	if s.owedSince == 0 {
		s.owedSince = now
	}
	wait := time.Duration((cost - s.tokens) / rate * float64(time.Second))
	if wait > maxWait || time.Duration(now-s.owedSince) > maxViolation {
		return wait, false
	}
	s.tokens -= cost
	return wait, true
}

// forever is a violation bound that never refuses.
const forever = time.Duration(1<<63 - 1)

func (s *state) refill(rate, burst float64, now int64) {
	if now > s.last {
		s.tokens = min(burst, s.tokens+float64(now-s.last)*rate/float64(time.Second))
		s.last = now
	}
}

// Bucket is one token bucket: rate tokens a second, at most burst saved.
type Bucket struct {
	rate, burst float64
	mu          sync.Mutex
	s           state
}

// NewBucket returns a full bucket; rate ≤ 0 means no limit (nil).
func NewBucket(rate float64, burst int, now time.Time) *Bucket {
	if rate <= 0 {
		return nil
	}
	b := &Bucket{rate: rate, burst: float64(max(burst, 1))}
	b.s = state{tokens: b.burst, last: now.UnixNano()}
	return b
}

// Reserve takes a token now or within maxWait and says how long to wait
// before using it; ok is false (and nothing is taken) when the wait would
// be longer than maxWait. A nil Bucket never limits.
func (b *Bucket) Reserve(now time.Time, maxWait time.Duration) (wait time.Duration, ok bool) {
	return b.ReserveN(1, now, maxWait)
}

// ReserveN is Reserve for something that costs n tokens (n may be a
// fraction: a connect cheaper than the one the rate is counted in).
func (b *Bucket) ReserveN(n float64, now time.Time, maxWait time.Duration) (wait time.Duration, ok bool) {
	if b == nil {
		return 0, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s.reserve(n, b.rate, b.burst, now.UnixNano(), maxWait, forever)
}

// keyedShards spreads keys over independently locked maps.
const keyedShards = 64

// Keyed is a token bucket per key (a source address, a device), each
// with the same rate and burst. A key's bucket exists only while it is
// not full: Sweep drops the full ones.
type Keyed struct {
	rate, burst float64
	seed        maphash.Seed
	shards      [keyedShards]keyedShard
}

type keyedShard struct {
	mu sync.Mutex
	m  map[string]*state
}

// NewKeyed returns per-key buckets; rate ≤ 0 means no limit (nil).
func NewKeyed(rate float64, burst int) *Keyed {
	if rate <= 0 {
		return nil
	}
	k := &Keyed{rate: rate, burst: float64(max(burst, 1)), seed: maphash.MakeSeed()}
	for i := range k.shards {
		k.shards[i].m = map[string]*state{}
	}
	return k
}

func (k *Keyed) shard(key string) *keyedShard {
	return &k.shards[maphash.String(k.seed, key)%keyedShards]
}

// Reserve is Bucket.Reserve for key's bucket (created full). A nil Keyed
// never limits.
func (k *Keyed) Reserve(key string, now time.Time, maxWait time.Duration) (time.Duration, bool) {
	return k.Shape(key, now, maxWait, forever)
}

// Shape is Reserve for a key whose caller waits for each token before it
// asks for the next (one device's reader): its wait never grows past one
// token's worth, so it is refused instead once the limit has been
// violated without a break for longer than maxViolation — IoT Hub answers
// 429 "only after the limit has been violated for too long".
func (k *Keyed) Shape(key string, now time.Time, maxWait, maxViolation time.Duration) (time.Duration, bool) {
	if k == nil {
		return 0, true
	}
	n := now.UnixNano()
	sh := k.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.m[key]
	if s == nil {
		s = &state{tokens: k.burst, last: n}
		sh.m[key] = s
	}
	return s.reserve(1, k.rate, k.burst, n, maxWait, maxViolation)
}

// Sweep drops the buckets that have refilled (they would be created full
// again), and returns how many remain.
func (k *Keyed) Sweep(now time.Time) int {
	if k == nil {
		return 0
	}
	n, left := now.UnixNano(), 0
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.Lock()
		for key, s := range sh.m {
			s.refill(k.rate, k.burst, n)
			if s.tokens >= k.burst {
				delete(sh.m, key)
			}
		}
		left += len(sh.m)
		sh.mu.Unlock()
	}
	return left
}
