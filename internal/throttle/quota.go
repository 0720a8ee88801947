package throttle

import (
	"sync"
	"time"
)

// DailyQuota counts D2C messages per UTC day against a limit (IoT Hub's
// daily message quota, reset at 00:00 UTC; refusals are 403002).
type DailyQuota struct {
	limit int64
	mu    sync.Mutex
	day   int64 // days since the Unix epoch, UTC
	used  int64
}

// NewDailyQuota returns a quota of limit messages a day; limit ≤ 0 means
// none (nil).
func NewDailyQuota(limit int64) *DailyQuota {
	if limit <= 0 {
		return nil
	}
	return &DailyQuota{limit: limit}
}

func dayOf(t time.Time) int64 { return t.UTC().Unix() / 86400 }

func (q *DailyQuota) roll(now time.Time) {
	if d := dayOf(now); d != q.day {
		q.day, q.used = d, 0
	}
}

// Take counts one message unless the day's quota is used up; it reports
// whether it did. A nil quota always takes.
func (q *DailyQuota) Take(now time.Time) bool {
	if q == nil {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now)
	if q.used >= q.limit {
		return false
	}
	q.used++
	return true
}

// Used is how many messages today's quota has counted.
func (q *DailyQuota) Used(now time.Time) int64 {
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now)
	return q.used
}

// Seed sets today's count (at start, from what the metrics history saw
// since midnight), so a restart does not reset the day.
func (q *DailyQuota) Seed(now time.Time, used int64) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now)
	q.used = max(q.used, used)
}

// Limit is the daily quota (0: none).
func (q *DailyQuota) Limit() int64 {
	if q == nil {
		return 0
	}
	return q.limit
}
