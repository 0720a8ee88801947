package delivery

import (
	"slices"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/events"
)

// Delivery log bounds: attempts kept per subscription (in memory, since
// the hub started) and devices named per attempt.
const (
	DeliveryLogSize   = 200
	deliveryLogDevice = 5
)

// deliveryLog is a subscription's recent attempts (a ring) and its last
// delivery and error, written by the runner, read by the API.
type deliveryLog struct {
	mu        sync.Mutex
	ring      []events.DeliveryAttempt
	next      int
	lastOK    time.Time
	lastErr   string
	lastErrAt time.Time
}

func (l *deliveryLog) add(a events.DeliveryAttempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < DeliveryLogSize {
		l.ring = append(l.ring, a)
	} else {
		l.ring[l.next] = a
	}
	l.next = (l.next + 1) % DeliveryLogSize
	switch {
	case a.OK:
		l.lastOK = a.Time.Add(time.Duration(a.Duration * float64(time.Second)))
	case !a.Aborted:
		l.lastErr, l.lastErrAt = a.Error, a.Time
	}
}

// recent returns up to n attempts, newest first.
func (l *deliveryLog) recent(n int) []events.DeliveryAttempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]events.DeliveryAttempt, 0, min(n, len(l.ring)))
	for i := 1; i <= len(l.ring) && len(out) < n; i++ {
		out = append(out, l.ring[(l.next-i+len(l.ring))%len(l.ring)])
	}
	return out
}

func (l *deliveryLog) last() (ok time.Time, err string, errAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastOK, l.lastErr, l.lastErrAt
}

// attemptOf is the log entry of a send of ents that started at start and
// took took.
func attemptOf(ents []*entry, attempt int, res Result, start time.Time, took time.Duration) events.DeliveryAttempt {
	a := events.DeliveryAttempt{
		Time: start, Duration: took.Seconds(), Attempt: attempt, Events: len(ents),
		OK: res.OK, Final: res.Final, Aborted: res.Aborted, Outcome: res.Outcome, Status: res.Status,
		Error: res.Err, Output: res.Output, Devices: []string{},
	}
	if len(ents) > 0 {
		a.EventID = ents[0].ev.ID
	}
	for _, e := range ents {
		if len(a.Devices) == deliveryLogDevice {
			break
		}
		if !slices.Contains(a.Devices, e.ev.DeviceID) {
			a.Devices = append(a.Devices, e.ev.DeviceID)
		}
	}
	return a
}
