package delivery

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/internal/events"
)

// Destination is one kind of destination (events.Destination.Kind). The
// engine owns the order, retries, time-to-live, dead letters, renewal
// filter and metrics of every subscription; a Destination only knows how
// to reach its kind:
//
//   - Check proves, before anything is delivered, that a subscription's
//     destination can take events (a stream is created, a program exists,
//     a mail server takes the hub's account). Webhooks have the endpoint
//     handshake instead (events.Handshaker).
//   - Open returns the Sender of one subscription's runner.
//   - Remove deletes what the destination keeps for a subscription that is
//     gone (a stream); nothing for most kinds.
//
// One value serves every subscription of its kind, so state shared
// between them (the e-mail rate limit per recipient) lives in it.
type Destination interface {
	Check(ctx context.Context, sub events.Subscription) error
	Open(sub events.Subscription, env SendEnv) Sender
	Remove(ctx context.Context, subscriptionKey string) error
}

// Sender delivers the batches of one subscription's runner. Send is called
// from up to the subscription's concurrency limit of goroutines at once,
// each with other devices' events; it reports the outcome and must return
// when ctx ends. Close is called when the runner stops: sends still in
// progress may finish, but one that only waits (an e-mail digest window,
// a rate limit) returns Result.Aborted at once.
type Sender interface {
	Send(ctx context.Context, b Batch) Result
	Close()
}

// Batch is what one Send delivers.
type Batch struct {
	Sub    events.Subscription
	Events []events.Event
	// Attempt is 1 for the first attempt of the batch's most-tried event.
	Attempt int
}

// Result is the outcome of one Send.
type Result struct {
	// OK: delivered.
	OK bool
	// Final: failed in a way retrying cannot mend; the events are
	// dead-lettered at once.
	Final bool
	// Aborted: not an attempt (the runner is stopping); the events go
	// back to JetStream and their attempt is not counted.
	Aborted bool
	// Outcome names a failure (lastDeliveryOutcome): "NotFound",
	// "TimedOut", "ExitStatus3", "MailRejected", …
	Outcome string
	// Status is a webhook's HTTP status (0 otherwise, or no answer).
	Status int
	// Err says what went wrong, for people.
	Err string
	// Output is what the destination said (a command's output), for the
	// delivery log.
	Output string
}

// SendEnv is what a sender gets from the engine.
type SendEnv struct {
	// Clock drives timeouts and waits, so tests control them.
	Clock Clock
	Log   *slog.Logger
	// Timeout is the engine's default bound of one attempt (Options.Timeout).
	Timeout time.Duration
}

// deadline returns a context that ends when ctx does or when d has passed
// on clock, and a stop function that reports whether d had passed.
func deadline(ctx context.Context, clock Clock, d time.Duration) (context.Context, func() bool) {
	ctx, cancel := context.WithCancel(ctx)
	var expired atomic.Bool
	t := clock.AfterFunc(d, func() {
		expired.Store(true)
		cancel()
	})
	return ctx, func() bool {
		t.Stop()
		cancel()
		return expired.Load()
	}
}

// nothingKept completes a Destination that keeps nothing for its
// subscriptions (Remove) or a Sender that holds nothing (Close).
type nothingKept struct{}

func (nothingKept) Remove(context.Context, string) error { return nil }
func (nothingKept) Close()                               {}

// stateless is the Sender of a destination whose sends share nothing but
// the destination: each Send calls send with the engine's env.
type stateless struct {
	nothingKept
	env  SendEnv
	send func(ctx context.Context, env SendEnv, b Batch) Result
}

func (s stateless) Send(ctx context.Context, b Batch) Result { return s.send(ctx, s.env, b) }

// unavailable is the sender of a subscription whose kind this engine has
// no destination for: every attempt fails (and is retried, in case the
// hub is restarted with it).
type unavailable struct {
	nothingKept
	kind string
}

func (u unavailable) Send(context.Context, Batch) Result {
	return Result{Outcome: "Unavailable", Err: "this hub delivers no " + u.kind + " destinations (see tether serve --help)"}
}
