package alert

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// RetryPolicy is a send loop's retry schedule: Initial, doubled per
// attempt, capped at Max, at most Attempts attempts in all.
type RetryPolicy struct {
	Initial  time.Duration
	Max      time.Duration
	Attempts int
}

// DefaultRetry retries for about 10 minutes.
var DefaultRetry = RetryPolicy{Initial: time.Second, Max: time.Minute, Attempts: 15}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as final: the send loop does not retry it.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool { var p permanentError; return errors.As(err, &p) }

// sendFunc delivers one notification to one destination.
type sendFunc func(ctx context.Context, n notification) error

// notification is what a send loop delivers: the alert and its payload.
type notification struct {
	alert   Alert
	payload []byte   // common alert schema JSON
	track   *tracker // nil: nobody waits for the outcome
}

// Outcome is what became of a notification (Dispatcher.NotifyDone).
type Outcome int

const (
	// Sent: every destination took it (or there was none).
	Sent Outcome = iota
	// Failed: a destination gave up on it (retries exhausted, a
	// permanent error, its queue full).
	Failed
	// Abandoned: the dispatcher closed before a destination could send
	// it; it may never have left this node.
	Abandoned
)

// tracker counts a notification's destinations down and reports the
// worst outcome when the last finishes.
type tracker struct {
	mu   sync.Mutex
	left int
	out  Outcome
	done func(Outcome)
}

func (t *tracker) finish(o Outcome) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.out = max(t.out, o)
	t.left--
	last, out := t.left == 0, t.out
	t.mu.Unlock()
	if last {
		t.done(out)
	}
}

// DestinationStats counts a destination's outcomes.
type DestinationStats struct {
	Group     string `json:"actionGroup"`
	Kind      string `json:"kind"`
	Target    string `json:"target"`
	Queued    int    `json:"queued"`
	Sent      uint64 `json:"sent"`
	Failed    uint64 `json:"failed"`
	Retried   uint64 `json:"retried"`
	Dropped   uint64 `json:"dropped"`
	LastError string `json:"lastError,omitempty"`
}

// sendLoop delivers one destination's notifications in order, one at a
// time, retrying with capped exponential backoff.
type sendLoop struct {
	send  sendFunc
	q     chan notification
	retry RetryPolicy
	log   *slog.Logger
	done  chan struct{}

	mu    sync.Mutex
	stats DestinationStats
}

func newSendLoop(stats DestinationStats, send sendFunc, queue int, retry RetryPolicy, log *slog.Logger) *sendLoop {
	return &sendLoop{
		send: send, q: make(chan notification, queue), retry: retry, done: make(chan struct{}), stats: stats,
		log: log.With("action_group", stats.Group, "action", stats.Kind, "target", stats.Target),
	}
}

// enqueue queues n; a full queue drops it (and says so, and reports
// false).
func (l *sendLoop) enqueue(n notification) bool {
	select {
	case l.q <- n:
		return true
	default:
		l.mu.Lock()
		l.stats.Dropped++
		l.mu.Unlock()
		l.log.Error("alert notification dropped: the destination's queue is full", "rule", n.alert.Rule.Name, "alert", n.alert.ID, "condition", n.alert.Condition)
		return false
	}
}

func (l *sendLoop) run(ctx context.Context) {
	defer close(l.done)
	for n := range l.q {
		l.deliver(ctx, n)
	}
}

func (l *sendLoop) deliver(ctx context.Context, n notification) {
	delay := l.retry.Initial
	for attempt := 1; ; attempt++ {
		err := l.send(ctx, n)
		l.mu.Lock()
		if err == nil {
			l.stats.Sent++
			l.mu.Unlock()
			l.log.Debug("alert notification sent", "rule", n.alert.Rule.Name, "alert", n.alert.ID, "condition", n.alert.Condition, "attempt", attempt)
			n.track.finish(Sent)
			return
		}
		l.stats.LastError = err.Error()
		final := IsPermanent(err) || attempt >= l.retry.Attempts || ctx.Err() != nil
		if final {
			l.stats.Failed++
		} else {
			l.stats.Retried++
		}
		l.mu.Unlock()
		if final {
			l.log.Error("alert notification failed", "rule", n.alert.Rule.Name, "alert", n.alert.ID, "condition", n.alert.Condition, "attempts", attempt, "err", err)
			if ctx.Err() != nil && !IsPermanent(err) {
				n.track.finish(Abandoned)
			} else {
				n.track.finish(Failed)
			}
			return
		}
		l.log.Warn("alert notification failed; retrying", "rule", n.alert.Rule.Name, "alert", n.alert.ID, "attempt", attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay = min(delay*2, l.retry.Max)
	}
}

func (l *sendLoop) snapshot() DestinationStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Queued = len(l.q)
	return s
}
