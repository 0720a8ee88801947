package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
)

// Engine delivers the journal's events to every subscription in the store.
// Build it with New, then Start; Stop ends it. Subscriptions changed
// through the API take effect with Reload (the engine also lists the store
// after each change a ChangeWatcher store signals, else every
// ResyncInterval).
type Engine struct {
	o   Options
	log *slog.Logger
	dl  DeadLetterStore

	recMu sync.Mutex // serialises reconciling subscriptions

	mu      sync.Mutex
	runners map[string]*runner // by subscription key
	stats   map[string]*counters
	state   int // 0 new, 1 started, 2 stopped
	cancel  context.CancelFunc
	loop    chan struct{}

	randMu sync.Mutex

	resyncs atomic.Uint64 // listings by the resync loop (tests)

	hand handed // what the previous engines left unconfirmed (ledger.go)
}

// Engine states.
const (
	stateNew = iota
	stateStarted
	stateStopped
)

// Errors of the Engine.
var (
	ErrNotStarted = errors.New("delivery: engine not started")
	ErrStopped    = errors.New("delivery: engine stopped")
)

// New checks o and fills its defaults. It touches neither JetStream nor
// the store: Start does.
func New(o Options) (*Engine, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	return &Engine{o: o, log: o.Logger, dl: o.DeadLetters, runners: map[string]*runner{}, stats: map[string]*counters{}}, nil
}

// Start creates the dead-letter stream (unless Options.DeadLetters is set),
// starts a runner per stored subscription (creating its consumers; active
// or not), removes consumers of subscriptions that no longer exist, and
// starts the resync loop. A subscription that cannot be started is logged
// and left for the next Reload or resync; Start fails only if the store or
// the dead-letter stream cannot be reached.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.state != stateNew {
		e.mu.Unlock()
		return errors.New("delivery: engine already started")
	}
	e.mu.Unlock()
	if e.dl == nil {
		dl, err := OpenDeadLetters(ctx, e.o.JS, DeadLetterOptions{Replicas: e.o.Replicas})
		if err != nil {
			return err
		}
		e.dl = dl
	}
	e.takeHandover(ctx)
	// Watched before the first List, so no write after it goes unseen.
	changes, stopWatch := e.watchStore()
	subs, err := e.o.Store.List(ctx)
	if err != nil {
		if stopWatch != nil {
			stopWatch()
		}
		return fmt.Errorf("delivery: listing subscriptions: %w", err)
	}
	e.mu.Lock()
	e.state = stateStarted
	lctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.loop = make(chan struct{})
	e.mu.Unlock()
	known := map[string]bool{}
	for _, s := range subs {
		known[s.Key()] = true
		if err := e.apply(ctx, s); err != nil {
			e.log.Error("subscription not started", "subscription", s.Name, "err", err)
		}
	}
	if keys, err := e.consumerKeys(ctx); err != nil {
		e.log.Warn("listing consumers failed", "err", err)
	} else {
		for k := range keys {
			if !known[k] {
				if err := e.remove(ctx, k); err != nil {
					e.log.Warn("removing consumers of a deleted subscription failed", "subscription", k, "err", err)
				}
			}
		}
	}
	go e.resync(lctx, changes, stopWatch)
	return nil
}

// Stop stops every subscription: no more fetching, POSTs in flight get
// until ctx ends, and undelivered messages are handed back to JetStream
// (the consumers keep their positions). It is idempotent.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if e.state != stateStarted {
		e.state = stateStopped
		e.mu.Unlock()
		return nil
	}
	e.state = stateStopped
	e.cancel()
	loop := e.loop
	e.mu.Unlock()
	<-loop
	e.recMu.Lock()
	defer e.recMu.Unlock()
	e.mu.Lock()
	rs := make([]*runner, 0, len(e.runners))
	for k, r := range e.runners {
		rs = append(rs, r)
		delete(e.runners, k)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.stop(ctx)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// Reload brings subscription name in line with the store: a new one starts
// (its consumers deliver events published from now on), a changed
// definition restarts it (consumers keep their positions), a changed state
// (validated, disabled) starts or pauses delivery, a deleted one stops and
// its consumers and dead letters are removed. Call it after every write of
// a subscription; it returns once the consumers exist.
func (e *Engine) Reload(ctx context.Context, name string) error {
	if err := e.running(); err != nil {
		return err
	}
	s, _, err := e.o.Store.Get(ctx, name)
	if errors.Is(err, events.ErrNotFound) {
		return e.remove(ctx, events.NameKey(name))
	}
	if err != nil {
		return err
	}
	return e.apply(ctx, s)
}

func (e *Engine) running() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case stateNew:
		return ErrNotStarted
	case stateStopped:
		return ErrStopped
	}
	return nil
}

// definition is what a runner is built from: the subscription without its
// state.
func definition(s events.Subscription) string {
	b, _ := json.Marshal(s.Definition())
	return string(b)
}

// apply starts, restarts or updates the runner of s.
func (e *Engine) apply(ctx context.Context, s events.Subscription) error {
	e.recMu.Lock()
	defer e.recMu.Unlock()
	if err := e.running(); err != nil {
		return err
	}
	key, def := s.Key(), definition(s)
	e.mu.Lock()
	old := e.runners[key]
	e.mu.Unlock()
	if old != nil && old.def == def {
		return old.call(ctx, func() { old.setSub(s) })
	}
	if old != nil {
		old.stop(ctx)
		e.mu.Lock()
		delete(e.runners, key)
		e.mu.Unlock()
		if k := old.kind; k != s.Destination.Kind() && e.o.Destinations[k] != nil {
			// What the old kind kept (a stream) goes with it.
			if err := e.o.Destinations[k].Remove(ctx, key); err != nil {
				e.log.Warn("removing what the old destination kept failed", "subscription", s.Name, "kind", k, "err", err)
			}
		}
	}
	m, err := events.NewMatcher(s)
	if err != nil {
		return err
	}
	r := e.newRunner(s, def, m)
	want := streamsFor(s)
	for _, k := range streamKinds {
		if !slices.Contains(want, k) {
			if err := e.deleteConsumer(ctx, s.Name, k); err != nil {
				return err
			}
			continue
		}
		c, info, err := e.ensureConsumer(ctx, s, k)
		if err != nil {
			return err
		}
		st := &stream{idx: len(r.streams), kind: k, name: k.name(), cons: c,
			single: info.Cluster == nil || len(info.Cluster.Replicas) == 0}
		if info.NumAckPending > 0 {
			st.rec = &recovery{delivered: info.Delivered.Stream, need: info.NumAckPending, old: map[uint64]item{},
				ackWait: e.o.AckWait}
			if e.o.AckWait > recoveryAckWait {
				if err := e.setAckWait(ctx, s, k, recoveryAckWait); err != nil {
					e.log.Warn("recovery waits for the normal AckWait", "subscription", s.Name, "err", err)
				} else {
					st.rec.ackWait = recoveryAckWait
					st.rec.restore = func(ctx context.Context) error { return e.setAckWait(ctx, r.sub, k, e.o.AckWait) }
				}
			}
		}
		r.streams = append(r.streams, st)
	}
	r.start()
	e.mu.Lock()
	e.runners[key] = r
	e.mu.Unlock()
	e.log.Info("subscription delivery started", "subscription", s.Name, "active", s.Active(), "streams", len(r.streams))
	return nil
}

// remove stops the runner of subscription key and deletes its consumers,
// its dead letters and what its destination keeps (a stream).
func (e *Engine) remove(ctx context.Context, key string) error {
	e.recMu.Lock()
	defer e.recMu.Unlock()
	e.mu.Lock()
	r := e.runners[key]
	delete(e.runners, key)
	delete(e.stats, key)
	e.mu.Unlock()
	if r != nil {
		r.stop(ctx)
		e.log.Info("subscription delivery removed", "subscription", r.name)
	}
	var errs []error
	for _, k := range streamKinds {
		errs = append(errs, e.deleteConsumer(ctx, key, k))
	}
	if e.dl != nil {
		errs = append(errs, e.dl.Purge(ctx, key))
	}
	for _, d := range e.o.Destinations {
		errs = append(errs, d.Remove(ctx, key))
	}
	return errors.Join(errs...)
}

// Check proves the destination of sub, a kind without the webhook
// handshake, and returns sub with the outcome as its state
// (events.Subscription.WithCheck): Succeeded, or Failed saying why. A
// Stream's stream is created (or its limits updated) here.
func (e *Engine) Check(ctx context.Context, sub events.Subscription) events.Subscription {
	start := e.o.Clock.Now()
	d := e.o.Destinations[sub.Destination.Kind()]
	var err error
	if d == nil {
		err = fmt.Errorf("this hub delivers no %s destinations", sub.Destination.Kind())
	} else {
		err = d.Check(ctx, sub)
	}
	if err != nil {
		e.log.Warn("subscription destination check failed", "subscription", sub.Name, "kind", sub.Destination.Kind(), "err", err)
	}
	return sub.WithCheck(err, start, e.o.Clock.Now())
}

// Resync timing when the store signals its changes (events.ChangeWatcher):
// a change is reconciled resyncSettle after its signal (which may precede
// the write being visible to List; a burst of writes is listed once), and
// the store is listed anyway every ResyncInterval × resyncWatchedFactor, for
// a signal lost while the journal connection was down.
const (
	resyncSettle        = 200 * time.Millisecond
	resyncWatchedFactor = 30
)

// watchStore starts watching the store's changes, when it can signal them
// and resyncing is on; else it returns nil (resync polls).
func (e *Engine) watchStore() (<-chan struct{}, func()) {
	w, ok := e.o.Store.(events.ChangeWatcher)
	if !ok || e.o.ResyncInterval < 0 {
		return nil, nil
	}
	changes, stop, err := w.WatchChanges()
	if err != nil {
		e.log.Warn("cannot watch subscription changes; listing the store every interval", "interval", e.o.ResyncInterval, "err", err)
		return nil, nil
	}
	return changes, stop
}

// resync reconciles the engine with the store: after each change it
// signals (changes, when watched), or every ResyncInterval when it cannot
// signal them.
func (e *Engine) resync(ctx context.Context, changes <-chan struct{}, stopWatch func()) {
	defer close(e.loop)
	if stopWatch != nil {
		defer stopWatch()
	}
	if e.o.ResyncInterval < 0 {
		<-ctx.Done()
		return
	}
	every := e.o.ResyncInterval
	if changes != nil {
		every *= resyncWatchedFactor
	}
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changes:
			if !journal.Sleep(ctx, resyncSettle) {
				return
			}
			select { // the changes of the pause are in this listing
			case <-changes:
			default:
			}
		}
		t.Reset(every)
		e.resyncs.Add(1)
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		subs, err := e.o.Store.List(lctx)
		if err != nil {
			e.log.Warn("listing subscriptions failed", "err", err)
			cancel()
			continue
		}
		known := map[string]bool{}
		for _, s := range subs {
			known[s.Key()] = true
			if err := e.apply(lctx, s); err != nil && !errors.Is(err, ErrStopped) {
				e.log.Warn("subscription not reconciled", "subscription", s.Name, "err", err)
			}
		}
		e.mu.Lock()
		var gone []string
		for k := range e.runners {
			if !known[k] {
				gone = append(gone, k)
			}
		}
		e.mu.Unlock()
		for _, k := range gone {
			if err := e.remove(lctx, k); err != nil {
				e.log.Warn("removing a deleted subscription failed", "subscription", k, "err", err)
			}
		}
		cancel()
	}
}

func (e *Engine) runner(name string) (*runner, error) {
	if err := e.running(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.runners[events.NameKey(name)]
	if r == nil {
		return nil, ErrNotRunning
	}
	return r, nil
}

// DeadLetters lists up to limit (0: all) dead letters of subscription name,
// oldest first. Use DeadLetter.JSON(schema) for Event Grid's form.
func (e *Engine) DeadLetters(ctx context.Context, name string, limit int) ([]DeadLetterRecord, error) {
	if err := e.running(); err != nil {
		return nil, err
	}
	return e.dl.List(ctx, name, limit)
}

// Replay re-enqueues dead letters of subscription name: those of the
// given event ids, or all when none are given (at most MaxReplay per
// call). They are queued behind what their devices hold, in their original
// order (event time, then journal position), with fresh attempts and a
// time-to-live starting now. A record is removed when its event is
// delivered, and replaced when it is dead-lettered again. It returns how
// many were queued.
func (e *Engine) Replay(ctx context.Context, name string, ids ...string) (int, error) {
	r, err := e.runner(name)
	if err != nil {
		return 0, err
	}
	recs, err := e.dl.List(ctx, name, 0)
	if err != nil {
		return 0, err
	}
	recs = selectRecords(recs, ids)
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i].Event, recs[j].Event
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.DeviceID == b.DeviceID && a.Sequence != "" && b.Sequence != "" {
			return a.Sequence < b.Sequence
		}
		return recs[i].StreamSeq < recs[j].StreamSeq
	})
	if len(recs) > e.o.MaxReplay {
		recs = recs[:e.o.MaxReplay]
	}
	n := 0
	err = r.call(ctx, func() { n = r.replay(recs) })
	return n, err
}

// DiscardDeadLetters removes dead letters of subscription name: those of
// the given event ids, or all. It returns how many were removed.
func (e *Engine) DiscardDeadLetters(ctx context.Context, name string, ids ...string) (int, error) {
	if err := e.running(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		recs, err := e.dl.List(ctx, name, 0)
		if err != nil {
			return 0, err
		}
		return len(recs), e.dl.Purge(ctx, name)
	}
	recs, err := e.dl.List(ctx, name, 0)
	if err != nil {
		return 0, err
	}
	recs = selectRecords(recs, ids)
	for _, rec := range recs {
		if err := e.dl.Delete(ctx, name, rec.Seq); err != nil {
			return 0, err
		}
	}
	return len(recs), nil
}

func selectRecords(recs []DeadLetterRecord, ids []string) []DeadLetterRecord {
	if len(ids) == 0 {
		return recs
	}
	out := recs[:0:0]
	for _, rec := range recs {
		if slices.Contains(ids, rec.Event.ID) {
			out = append(out, rec)
		}
	}
	return out
}

func (e *Engine) rand() float64 {
	if e.o.Rand != nil {
		e.randMu.Lock()
		defer e.randMu.Unlock()
		return e.o.Rand()
	}
	return rand.Float64()
}
