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
// renamed) every SaveEvery and at Stop. At start the feed loads it and
// follows both streams from the next position with ordered consumers, as
// the metrics collector follows its own stored positions: the snapshot is
// the consumer's durable state, and a crash replays at most SaveEvery of
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
// Per connection event: one decode (journal.DecodeConnectionEvent, ~2 µs)
// and one insight.Engine.Apply (~1 µs, map lookups and fixed-size
// updates); BenchmarkFeed measures both with the journal in between. The
// feed never reads the log store.
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
	// SaveEvery is how often the snapshot is written; default 30 s.
	SaveEvery time.Duration
	// TickEvery is how often engine time follows the clock once the feed
	// has caught up (incident and flap timers); default 1 s.
	TickEvery time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
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
	replayUpTo atomic.Uint64
	insights   jetstream.Stream
	connPending   atomic.Int64
	regPending    atomic.Int64
	caughtUp      atomic.Bool
	published     atomic.Uint64
	skipped       atomic.Uint64
	saves         atomic.Uint64

	life      sync.Mutex
	consumers []jetstream.ConsumeContext
	stop      context.CancelFunc
	done      chan struct{}
	started   bool
	saveMu    sync.Mutex
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
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Feed{o: o, log: o.Logger.With("component", "insight")}
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
}

// Status reports the feed's progress.
func (f *Feed) Status() Status {
	return Status{
		CaughtUp: f.caughtUp.Load(), Pending: f.connPending.Load() + f.regPending.Load(),
		Applied: f.engine.Applied(), Devices: f.engine.Devices(),
		Published: f.published.Load(), Skipped: f.skipped.Load(), Saves: f.saves.Load(),
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

	if err := f.follow(ctx, journal.StreamConn, conn, f.applyConn); err != nil {
		f.stopConsumers()
		return err
	}
	if err := f.follow(ctx, journal.StreamRegistry, reg, f.applyChange); err != nil {
		f.stopConsumers()
		return err
	}
	runCtx, stop := context.WithCancel(context.Background())
	f.stop, f.done, f.started = stop, make(chan struct{}), true
	go f.run(runCtx)
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
	f.stopConsumers()
	stop, done := f.stop, f.done
	f.life.Unlock()
	stop()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return f.Save()
}

func (f *Feed) stopConsumers() {
	for _, c := range f.consumers {
		c.Stop()
	}
	f.consumers = nil
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

// follow applies stream from after position pos.
func (f *Feed) follow(ctx context.Context, stream string, pos uint64, apply func(jetstream.Msg, uint64)) error {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if pos > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos+1
	}
	cons, err := f.o.JS.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("insight feed: consumer on %s: %w", stream, err)
	}
	pending := &f.connPending
	if stream == journal.StreamRegistry {
		pending = &f.regPending
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			f.log.Warn("insight: journal message without metadata", "subject", m.Subject(), "err", err)
			return
		}
		apply(m, md.Sequence.Stream)
		pending.Store(int64(md.NumPending))
		if md.NumPending == 0 && f.connPending.Load() == 0 && f.regPending.Load() == 0 {
			f.caughtUp.Store(true)
		}
	})
	if err != nil {
		return fmt.Errorf("insight feed: consumer on %s: %w", stream, err)
	}
	f.consumers = append(f.consumers, cc)
	return nil
}

func (f *Feed) applyConn(m jetstream.Msg, seq uint64) {
	ev, err := journal.DecodeConnectionEvent(m.Data())
	if err != nil {
		f.log.Warn("insight: undecodable connection event, skipped", "subject", m.Subject(), "seq", seq, "err", err)
		return
	}
	f.engine.Apply(&ev, seq)
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

// run ticks engine time once caught up and saves the snapshot.
func (f *Feed) run(ctx context.Context) {
	defer close(f.done)
	tick := time.NewTicker(f.o.TickEvery)
	defer tick.Stop()
	lastSave := f.o.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := f.o.Now()
		if f.caughtUp.Load() {
			f.engine.Tick(now)
		}
		if now.Sub(lastSave) >= f.o.SaveEvery {
			lastSave = now
			if err := f.Save(); err != nil {
				f.log.Error("insight: saving the state failed; retrying at the next interval", "err", err)
			}
		}
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
