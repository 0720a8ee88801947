// Package feed keeps an insight.Engine up to date with the journal: it
// applies every connection event (TETHER_CONN) and registry change
// (TETHER_REGISTRY) once, in stream order, and journals what the engine
// derives (TETHER_INSIGHTS) for the log writer and the event
// subscriptions.
//
// # Durability and rebuilds
//
// The engine's state and the stream positions it accounts for are saved
// together in one file (a gob snapshot, written to a temporary file and
// renamed) every SaveEvery while the state changes, and at Stop. At start the feed loads it and
// follows both streams from the next position without acks, as the
// metrics collector follows its own stored positions (TETHER_CONN through
// the node's journal.ConnFanout, which the collector shares, so each event
// is read and decoded once for both): the snapshot is the reader's durable
// state, and a crash replays at most SaveEvery of
// events, which the engine ignores if it has them (positions). Deleting
// the file rebuilds everything from the journal (30 days of connection
// events; the engine keeps 7). A position past a stream's end (a new
// journal under a kept data dir) also starts afresh.
//
// A rebuilt (or resumed) engine derives records again from the history it
// replays. One derived at or before the newest stored record's source
// position is not journalled again; one derived later while still
// replaying is journalled only if the journal does not have it (the
// incident's subject holds a record, or the device's newest flap record
// has the same state): timers run on event time, so a replay can derive a
// record at another position than the first time. Subscribers and the log
// see each incident and flap change once.
//
// # Cost
//
// Per connection event: one decode (journal.DecodeConnectionEvent, ~3 µs)
// and one insight.Engine.Apply (~1.5 µs, map lookups and fixed-size
// updates, no allocation), plus the journal handing the event over, which
// costs more than both: BenchmarkFeed (a backlog, ~16 µs of process CPU
// per event) and BenchmarkFeedAt5k (5,000 events/s: 6–8 % of a core on 2
// shared cores). The feed never reads the log store.
package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
)

// Options configure New. JS is required.
type Options struct {
	JS jetstream.JetStream
	// Insight configures the engine (its Emit is the feed's).
	Insight insight.Options
	// Publish journals a derived record (the hub's Publisher.Publish);
	// nil: records are not journalled.
	Publish func(journal.Msg) error
	// Path is the snapshot file; "": the state lives in memory only and is
	// rebuilt from the journal at every start.
	Path string
	// SaveEvery is how often the snapshot is written while events come;
	// default 30 s. A feed whose timers alone changed the state since the
	// last save (nothing applied) writes it every 10 × SaveEvery, and one
	// whose state did not change (insight.Engine.Changes) not at all.
	SaveEvery time.Duration
	// TickEvery is how often engine time follows the clock once the feed
	// has caught up, while the engine has timers to run (an open incident,
	// drops in its window, a flapping device: insight.Engine.Waiting) or
	// events come; default 1 s. Otherwise the feed wakes every
	// idleTicks × TickEvery, or for its next save, and reads (Fresh) move
	// engine time themselves.
	TickEvery time.Duration
	// IdleCheck is how soon a caught-up feed pulls anyway (it waits for
	// a publish on the streams, journal.Watch); default 10 s. Each empty
	// pull after a wait doubles the next, up to a minute.
	IdleCheck time.Duration
	Now       func() time.Time
	// Conn, when set, is the node's shared reader of TETHER_CONN (the
	// metrics collector reads it too): connection events come through it,
	// decoded once for all its readers, and the app starts and stops it.
	// Nil: the feed runs a fanout of its own.
	Conn   *journal.ConnFanout
	Logger *slog.Logger
}

// Feed follows the journal into an engine.
type Feed struct {
	o      Options
	log    *slog.Logger
	engine *insight.Engine

	// publishedUpTo: records derived at or before this TETHER_CONN
	// position are already in TETHER_INSIGHTS.
	publishedUpTo atomic.Uint64
	// replayUpTo is the TETHER_CONN position at start: records derived up
	// to it are derived again from history, and journalled only if the
	// journal does not have them (stored).
	replayUpTo  atomic.Uint64
	insights    jetstream.Stream
	connPending atomic.Int64
	regPending  atomic.Int64
	caughtUp    atomic.Bool
	published   atomic.Uint64
	skipped     atomic.Uint64
	saves       atomic.Uint64
	watching    atomic.Int32
	ticks       atomic.Uint64
	// resting: the run loop waits longer than TickEvery; kick wakes it
	// (events applied, caught up).
	resting atomic.Bool
	kick    chan struct{}

	life    sync.Mutex
	loops   []func(context.Context)
	connOff func()              // removes the feed from the connection-event fanout
	ownFan  *journal.ConnFanout // the fanout the feed started itself (no Options.Conn)
	stop    context.CancelFunc
	done    chan struct{}
	started bool
	saveMu  sync.Mutex
}

// New builds the feed and its engine.
func New(o Options) (*Feed, error) {
	if o.JS == nil {
		return nil, errors.New("insight feed: the journal's JetStream is required")
	}
	if o.SaveEvery <= 0 {
		o.SaveEvery = 30 * time.Second
	}
	if o.TickEvery <= 0 {
		o.TickEvery = time.Second
	}
	if o.IdleCheck <= 0 {
		o.IdleCheck = defaultIdleCheck
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Feed{o: o, log: o.Logger.With("component", "insight"), kick: make(chan struct{}, 1)}
	f.engine = f.newEngine()
	return f, nil
}

func (f *Feed) newEngine() *insight.Engine {
	io := f.o.Insight
	io.Emit = f.emit
	io.Logger = f.log
	return insight.NewEngine(io)
}

// Engine is the engine the feed keeps up to date.
func (f *Feed) Engine() *insight.Engine { return f.engine }

// Fresh is the engine with its time moved to the clock first (once the
// feed has caught up): between the ticks of an idle feed, a read sees
// what a tick would have made of it.
func (f *Feed) Fresh() *insight.Engine {
	if f.caughtUp.Load() {
		f.engine.Tick(f.o.Now())
	}
	return f.engine
}

// wake ends a resting run loop's wait.
func (f *Feed) wake() {
	if f.resting.Load() {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
}

// Status is how far the feed is.
type Status struct {
	// CaughtUp: the feed has applied everything the journal held when it
	// last looked (the engine answers about the present).
	CaughtUp bool `json:"caughtUp"`
	// Pending are journal messages not applied yet.
	Pending int64 `json:"pending"`
	// Applied counts the connection events applied since start.
	Applied   uint64 `json:"applied"`
	Devices   int    `json:"devices"`
	Published uint64 `json:"published"`
	// Skipped counts derived records not journalled again (a rebuild).
	Skipped uint64 `json:"skipped"`
	Saves   uint64 `json:"saves"`
	// Ticks counts the run loop's wake-ups (engine time, saves): about
	// one a second while the engine has timers or events come, otherwise
	// one per idleTicks seconds.
	Ticks uint64 `json:"ticks"`
	// Watching is how many of the feed's two streams it has caught up
	// with and waits on for a publish.
	Watching int `json:"watching"`
}

// Status reports the feed's progress.
func (f *Feed) Status() Status {
	return Status{
		CaughtUp: f.caughtUp.Load(), Pending: f.connPending.Load() + f.regPending.Load(),
		Applied: f.engine.Applied(), Devices: f.engine.Devices(),
		Published: f.published.Load(), Skipped: f.skipped.Load(), Saves: f.saves.Load(), Ticks: f.ticks.Load(),
		Watching: int(f.watching.Load()) + f.connWatching(),
	}
}

// Start loads the snapshot, finds where to resume and starts following
// the journal; it does not wait for the engine to catch up.
func (f *Feed) Start(ctx context.Context) error {
	f.life.Lock()
	defer f.life.Unlock()
	if f.started {
		return errors.New("insight feed: already started")
	}
	f.load()
	conn, reg := f.engine.Positions()
	connLast, err := f.lastSeq(ctx, journal.StreamConn)
	if err != nil {
		return err
	}
	regLast, err := f.lastSeq(ctx, journal.StreamRegistry)
	if err != nil {
		return err
	}
	if conn > connLast || reg > regLast {
		f.log.Warn("insight: the saved state is ahead of the journal (a new journal?); rebuilding from the journal",
			"conn", conn, "connLast", connLast, "registry", reg, "registryLast", regLast)
		f.engine = f.newEngine()
		conn, reg = 0, 0
	}
	up, err := f.lastPublished(ctx)
	if err != nil {
		return err
	}
	if up > connLast {
		up = 0 // records of another journal
	}
	f.publishedUpTo.Store(up)
	f.replayUpTo.Store(connLast)
	st, err := f.o.JS.Stream(ctx, journal.StreamInsights)
	if err != nil {
		return fmt.Errorf("insight feed: %w", err)
	}
	f.insights = st
	f.connPending.Store(int64(connLast - conn))
	f.regPending.Store(int64(regLast - reg))
	f.caughtUp.Store(connLast == conn && regLast == reg)

	f.loops = nil
	if err := f.follow(ctx, journal.StreamRegistry, reg, f.applyChange); err != nil {
		return err
	}
	fan := f.o.Conn
	if fan == nil {
		fan = journal.NewConnFanout(f.o.JS, journal.FanoutOptions{PollEvery: pollEvery, IdleCheck: f.o.IdleCheck, Logger: f.o.Logger})
		f.ownFan = fan
	}
	f.connOff = fan.Add(conn, f.applyConnBatch)
	if f.ownFan != nil {
		fan.Start()
	}
	runCtx, stop := context.WithCancel(context.Background())
	f.stop, f.done, f.started = stop, make(chan struct{}), true
	var wg sync.WaitGroup
	for _, loop := range f.loops {
		wg.Go(func() { loop(runCtx) })
	}
	wg.Go(func() { f.run(runCtx) })
	go func() {
		wg.Wait()
		close(f.done)
	}()
	f.log.Info("insight feed started", "conn", conn, "registry", reg, "devices", f.engine.Devices(), "publishedUpTo", up)
	return nil
}

// Stop ends the consumers and writes the snapshot. Idempotent.
func (f *Feed) Stop(ctx context.Context) error {
	f.life.Lock()
	if !f.started {
		f.life.Unlock()
		return nil
	}
	f.started = false
	stop, done := f.stop, f.done
	connOff, own := f.connOff, f.ownFan
	f.connOff, f.ownFan = nil, nil
	f.life.Unlock()
	connOff()
	if own != nil {
		if err := own.Stop(ctx); err != nil {
			return err
		}
	}
	stop()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return f.Save()
}

func (f *Feed) lastSeq(ctx context.Context, stream string) (uint64, error) {
	st, err := f.o.JS.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("insight feed: %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("insight feed: %s: %w", stream, err)
	}
	return info.State.LastSeq, nil
}

// lastPublished is the source position of the newest stored record.
func (f *Feed) lastPublished(ctx context.Context) (uint64, error) {
	st, err := f.o.JS.Stream(ctx, journal.StreamInsights)
	if err != nil {
		return 0, fmt.Errorf("insight feed: %w", err)
	}
	m, err := st.GetLastMsgForSubject(ctx, journal.InsightsPrefix+">")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("insight feed: newest insight record: %w", err)
	}
	r, err := insight.DecodeRecord(m.Data)
	if err != nil {
		f.log.Warn("insight: the newest insight record does not decode; records may be journalled twice", "err", err)
		return 0, nil
	}
	return r.Source, nil
}

// Pulling: the feed asks each stream for what it holds (up to pullBatch
// messages, not waiting) and, when it got less, waits pollEvery before
// asking again. At 5,000 events a second that is a batch every 250 ms: the
// consumer wakes 4 times a second instead of once per event, which halves
// the journal's share of the cost (BenchmarkFeedAt5k); insights are at most
// a quarter of a second later than the events, far inside what they need
// (an incident is announced 3 s after its burst). Once a pull comes back
// empty the feed watches the stream (journal.Watch) and waits for a
// publish instead, asking anyway every Options.IdleCheck: an idle hub does not
// pull four times a second per stream for nothing.
const (
	pullBatch        = 2000
	pollEvery        = 250 * time.Millisecond
	defaultIdleCheck = 10 * time.Second
	// idleCheckMax: the registry reader's fallback pulls space out from
	// IdleCheck to this while nothing comes.
	idleCheckMax = time.Minute
	// idleSaves: a feed whose timers alone changed the state saves every
	// idleSaves × SaveEvery.
	idleSaves = 10
	// idleTicks: a feed with nothing to time wakes every idleTicks ×
	// TickEvery (or for its next save).
	idleTicks = 60
	// idleBatch bounds the pulls of a caught-up feed (a pull allocates
	// channels sized to its batch).
	idleBatch = 64
)

// follow creates the stream's consumer (from after position pos) and
// starts pulling from it.
func (f *Feed) follow(ctx context.Context, stream string, pos uint64, apply func(jetstream.Msg, uint64)) error {
	cons, err := f.consumer(ctx, stream, pos)
	if err != nil {
		return err
	}
	f.loops = append(f.loops, func(run context.Context) { f.pull(run, stream, cons, apply) })
	return nil
}

// consumer is an ephemeral pull consumer without acks on stream, starting
// after pos. It goes away by itself when the feed no longer asks (a crash).
func (f *Feed) consumer(ctx context.Context, stream string, pos uint64) (jetstream.Consumer, error) {
	cons, err := f.o.JS.CreateConsumer(ctx, stream, journal.ReaderConsumer("Tether insight feed", pos))
	if err != nil {
		return nil, fmt.Errorf("insight feed: consumer on %s: %w", stream, err)
	}
	return cons, nil
}

// position is what the engine has applied of stream.
func (f *Feed) position(stream string) uint64 {
	conn, reg := f.engine.Positions()
	if stream == journal.StreamRegistry {
		return reg
	}
	return conn
}

// pull applies the stream's messages until ctx ends; a consumer that went
// away (an external server restarted) is made again from the engine's
// position.
func (f *Feed) pull(ctx context.Context, stream string, cons jetstream.Consumer, apply func(jetstream.Msg, uint64)) {
	pending := &f.regPending
	defer func() {
		if cons != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = f.o.JS.DeleteConsumer(dctx, stream, cons.CachedInfo().Name)
			cancel()
		}
	}()
	idle := journal.NewIdle(f.o.JS.Conn(), journal.StreamSubjects(stream), &f.watching, f.o.IdleCheck, idleCheckMax)
	defer idle.Busy()
	for ctx.Err() == nil {
		if cons == nil {
			var err error
			if cons, err = f.consumer(ctx, stream, f.position(stream)); err != nil {
				f.log.Warn("insight: cannot follow the journal; retrying", "stream", stream, "err", err)
				if !journal.Sleep(ctx, time.Second) {
					return
				}
				continue
			}
		}
		size := pullBatch
		if idle.Watching() {
			size = idleBatch
		}
		batch, err := cons.FetchNoWait(size)
		if err != nil {
			f.log.Warn("insight: reading the journal failed; retrying", "stream", stream, "err", err)
			if journal.ConsumerGone(err) {
				cons = nil
			}
			if !journal.Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		n := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				f.log.Warn("insight: journal message without metadata", "subject", m.Subject(), "err", err)
				continue
			}
			apply(m, md.Sequence.Stream)
			pending.Store(int64(md.NumPending))
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			f.log.Warn("insight: reading the journal failed; retrying", "stream", stream, "err", err)
			if journal.ConsumerGone(err) {
				cons = nil
			}
		}
		if n == 0 {
			pending.Store(0)
		}
		if f.connPending.Load() == 0 && f.regPending.Load() == 0 && f.caughtUp.CompareAndSwap(false, true) {
			f.wake()
		}
		switch {
		case n > 0:
			idle.Busy()
			f.wake()
			// Fewer than asked for: wait for more to gather (above).
			if n < size && !journal.Sleep(ctx, pollEvery) {
				return
			}
		case cons == nil:
			// The consumer is made again at the top of the loop.
		default:
			// Caught up: watch the stream and pull once more, then wait
			// for a publish; the waits' fallback grows to idleCheckMax
			// while nothing comes (journal.Idle).
			if err := idle.Caught(ctx); err != nil {
				f.log.Warn("insight: cannot watch the journal; polling", "stream", stream, "err", err)
				if !journal.Sleep(ctx, pollEvery) {
					return
				}
			}
		}
	}
}

// applyConnBatch applies one batch of the connection-event fanout.
func (f *Feed) applyConnBatch(b journal.FanoutBatch) {
	for _, ce := range b.Events {
		if ce.Event == nil {
			f.log.Warn("insight: undecodable connection event, skipped", "subject", ce.Subject, "seq", ce.Seq, "err", ce.Err)
			continue
		}
		f.engine.Apply(ce.Event, ce.Seq)
	}
	f.connPending.Store(int64(b.Pending))
	caught := b.Pending == 0 && f.regPending.Load() == 0 && f.caughtUp.CompareAndSwap(false, true)
	if len(b.Events) > 0 || caught {
		// (A caught-up fanout hands an empty batch after each idle pull.)
		f.wake()
	}
}

// connWatching is 1 when the connection-event fanout waits for a publish.
func (f *Feed) connWatching() int {
	f.life.Lock()
	fan := f.o.Conn
	if f.ownFan != nil {
		fan = f.ownFan
	}
	f.life.Unlock()
	if fan != nil && fan.Watching() {
		return 1
	}
	return 0
}

func (f *Feed) applyChange(m jetstream.Msg, seq uint64) {
	var c registry.Change
	if err := json.Unmarshal(m.Data(), &c); err != nil {
		f.log.Warn("insight: undecodable registry change, skipped", "subject", m.Subject(), "seq", seq, "err", err)
		return
	}
	f.engine.ApplyChange(&c, seq)
}

// emit journals a derived record (the engine calls it under its lock).
func (f *Feed) emit(r insight.Record) {
	subject := journal.InsightsSubject(r.Kind, r.Key())
	if r.Source <= f.publishedUpTo.Load() || (r.Source <= f.replayUpTo.Load() && f.stored(subject, r)) {
		f.skipped.Add(1)
		return
	}
	if f.o.Publish == nil {
		return
	}
	err := f.o.Publish(journal.Msg{
		Subject: subject,
		ID:      r.ID,
		Encode:  func() ([]byte, error) { return insight.EncodeRecord(r) },
	})
	if err != nil {
		f.log.Error("insight record not journalled", "id", r.ID, "kind", r.Kind, "err", err)
		return
	}
	f.published.Add(1)
}

// stored reports whether the journal already has what r records: an
// incident's announcement or close (its subject names the incident), or
// a device's flap state (the newest record of its subject has it). A
// record derived again while replaying history may come at another
// position or time than the first time (timers run on event time), so
// the position alone cannot tell.
func (f *Feed) stored(subject string, r insight.Record) bool {
	if f.insights == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := f.insights.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return false
	}
	if r.Flap == nil {
		return true
	}
	prev, err := insight.DecodeRecord(m.Data)
	return err == nil && prev.Flap != nil && prev.Flap.Flapping == r.Flap.Flapping
}

// run ticks engine time once caught up and saves the snapshot. It ticks
// every TickEvery while it catches up, events come or the engine has
// timers to run; otherwise it rests until its next save (at most
// idleTicks × TickEvery), or until events wake it: an idle hub's feed
// used to wake every second for nothing.
func (f *Feed) run(ctx context.Context) {
	t := time.NewTimer(f.o.TickEvery)
	defer t.Stop()
	lastSave := f.o.Now()
	savedConn, savedReg := f.engine.Positions()
	saved := f.engine.Changes() // the state on disk (or none to resume from)
	seenConn, seenReg := savedConn, savedReg
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
		f.resting.Store(false)
		f.ticks.Add(1)
		now := f.o.Now()
		caught := f.caughtUp.Load()
		if caught {
			f.engine.Tick(now)
		}
		// A feed saves SaveEvery after events moved its positions, and
		// idleSaves × SaveEvery after only its timers changed the state
		// (what only the clock changed is derived again after a crash,
		// as for any event after the last save); a state that has not
		// changed is not saved again: the gob of every device's state
		// costs ~80 ms of CPU with 10,000 devices.
		conn, reg := f.engine.Positions()
		changes := f.engine.Changes()
		due := f.o.SaveEvery
		if conn == savedConn && reg == savedReg {
			due *= idleSaves
		}
		if changes != saved && now.Sub(lastSave) >= due {
			lastSave, savedConn, savedReg, saved = now, conn, reg, changes
			if err := f.Save(); err != nil {
				f.log.Error("insight: saving the state failed; retrying at the next interval", "err", err)
			}
		}
		busy := !caught || conn != seenConn || reg != seenReg || f.engine.Waiting()
		seenConn, seenReg = conn, reg
		wait := f.o.TickEvery
		if !busy {
			wait = idleTicks * f.o.TickEvery
			if changes != saved {
				wait = min(wait, max(f.o.TickEvery, lastSave.Add(due).Sub(now)))
			}
			// Events applied from here on wake the loop (wake); the
			// check after setting resting catches those applied since
			// Positions above.
			f.resting.Store(true)
			if c, r := f.engine.Positions(); c != conn || r != reg || f.engine.Waiting() {
				wait = f.o.TickEvery
			}
		}
		t.Reset(wait)
	}
}

// Save writes the snapshot now (nothing without a Path).
func (f *Feed) Save() error {
	if f.o.Path == "" {
		return nil
	}
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(f.o.Path), 0o700); err != nil {
		return fmt.Errorf("insight: %w", err)
	}
	tmp := f.o.Path + ".tmp"
	file, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("insight: %w", err)
	}
	err = f.engine.Save(file)
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.o.Path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("insight: writing %s: %w", f.o.Path, err)
	}
	f.saves.Add(1)
	return nil
}

// load reads the snapshot, if any; an unusable one is set aside and the
// engine rebuilt from the journal.
func (f *Feed) load() {
	if f.o.Path == "" {
		return
	}
	file, err := os.Open(f.o.Path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		f.log.Warn("insight: cannot read the saved state; rebuilding from the journal", "path", f.o.Path, "err", err)
		return
	}
	defer file.Close()
	if err := f.engine.Load(file); err != nil {
		bad := f.o.Path + ".bad"
		_ = os.Rename(f.o.Path, bad)
		f.log.Warn("insight: the saved state is unusable (kept as "+filepath.Base(bad)+"); rebuilding from the journal", "err", err)
		f.engine = f.newEngine()
	}
}
