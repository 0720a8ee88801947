package connlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
)

// Writer defaults. Batches: an Append costs about 110–125 µs of fixed
// work on top of its records (BenchmarkAppendStorm: 28 µs a record in
// batches of 10, 17.5 µs in batches of 200 or 1000), so once a storm
// fills a batch within MaxWait the fixed part is under 1 µs a record;
// larger batches or a longer MaxWait would gain little and delay the log.
const (
	DefaultDurable        = "connlog"
	DefaultBatchSize      = 1000
	DefaultMaxWait        = 100 * time.Millisecond
	DefaultAckWait        = 30 * time.Second
	DefaultRetention      = 30 * 24 * time.Hour
	DefaultRetentionEvery = time.Hour
	DefaultIdleCheck      = 10 * time.Second
)

// idleCheckGrowth bounds how far an idle Writer's fallback fetches grow
// apart (IdleCheck doubles up to this many times itself: 160 s by default).
const idleCheckGrowth = 16

// idleBatch is the batch of the fetches an idle Writer makes (the one
// after it starts watching, and one per IdleCheck): a fetch allocates
// channels sized to its batch, and an idle consumer rarely has more.
const idleBatch = 64

// WriterOptions configure NewWriter. Zero fields take the defaults.
type WriterOptions struct {
	JS jetstream.JetStream // the journal's JetStream (journal.Journal.JS)
	// Store receives the records: a LogStore, or any destination that can
	// append and expire (diagnostic settings route to files and subjects).
	Store    Sink
	Resource Resource
	Logger   *slog.Logger
	// Categories limits the Writer to these categories (Connections ←
	// TETHER_CONN, DeviceIdentityOperations ← TETHER_REGISTRY, Insights ←
	// TETHER_INSIGHTS, the operation categories ← TETHER_OPS, each on its
	// own subjects); empty: all. One journal consumer per stream.
	Categories []string
	// DeliverNew makes a consumer that does not exist yet start with the
	// journal's next message instead of its first (a destination added
	// while the hub runs receives records from then on).
	DeliverNew bool
	// Durable is the consumer name on TETHER_CONN, TETHER_REGISTRY and
	// TETHER_INSIGHTS; on TETHER_OPS, which holds several categories, one
	// consumer filters the Writer's categories' subjects, named Durable +
	// "-ops" (ConsumerName). One Writer
	// per durable at a time: the consumers ack all (see Writer), so a
	// second Writer on the same durable would ack messages the first has
	// not stored yet. Give each store its own durable.
	Durable string
	// BatchSize and MaxWait bound one fetch: up to BatchSize messages, or
	// what arrived within MaxWait. One fetch is one Append.
	BatchSize int
	MaxWait   time.Duration
	// IdleCheck: a Writer that has caught up waits for a publish on its
	// subjects (journal.Watch) instead of fetching every MaxWait, and
	// fetches anyway after this long, for what reaches a consumer without
	// a publish (a redelivery after AckWait, of a delivery that never
	// reached the Writer). The wait doubles while nothing comes, up to
	// idleCheckGrowth × IdleCheck, so an idle hub is not woken every
	// IdleCheck by each of its consumers.
	IdleCheck time.Duration
	// AckWait is how long the journal waits for an ack before delivering
	// again (after a crash between Append and ack).
	AckWait time.Duration
	// Retention is how long records are kept; negative keeps them forever.
	// RetentionEvery is how often old records are deleted (and once at
	// Start).
	Retention      time.Duration
	RetentionEvery time.Duration
	// Now is the clock of the retention loop; default time.Now.
	Now func() time.Time
}

// Writer copies the journal into a LogStore: a durable pull consumer per
// stream fetches a batch, maps it to records, appends them in one
// transaction and only then acks the batch. A crash after the append makes
// the journal redeliver; the records' stable _ItemIds make the second
// append a no-op. A message that cannot be decoded is logged and dropped
// (acked with its batch, never redelivered). When Append fails the batch
// is retried with capped backoff until it succeeds or the Writer stops.
//
// The consumers ack all (AckAllPolicy): one ack of the batch's highest
// stream sequence, after the append, acknowledges the whole batch — one
// message to the journal per batch instead of one per message. An ack
// then also covers any earlier message still unacked, so Start makes sure
// there is none (see ensureConsumer), and a batch that does not continue
// the delivery sequence is not acked: see contiguous and rewind.
type Writer struct {
	o       WriterOptions
	log     *slog.Logger
	sources []*source

	processed atomic.Uint64
	records   atomic.Uint64
	skipped   atomic.Uint64
	waiting   atomic.Int32
	fetches   atomic.Uint64

	mu       sync.Mutex
	started  bool
	stopRun  context.CancelFunc // ends the loops after their current batch
	stopWork context.CancelFunc // aborts the current batch
	done     chan struct{}
}

// source is one journal stream the Writer reads: the whole stream (one
// category), or in TETHER_OPS the subjects of the Writer's operation
// categories (cats).
//
// One consumer per stream, not per category: in a cluster every durable
// consumer is a Raft group of its own, and each node's log writer had
// eight (five on TETHER_OPS), all of which elected at once after a node
// was lost (docs/SCALING.md, "Fewer Raft groups").
type source struct {
	stream   string
	category string   // the whole stream's category ("" for TETHER_OPS)
	cats     []string // TETHER_OPS: the operation categories read
	filter   string   // in allSources: the category's subjects in a shared stream
	// decode appends m's records to dst (dst unchanged on an error).
	decode func(w *Writer, category string, m jetstream.Msg, dst []Record) ([]Record, error)
	cons   jetstream.Consumer
	// next is the consumer sequence the consumer's next delivery must
	// have: every delivery since its last reset reached this Writer, so
	// an ack (of all up to a stream sequence) covers only stored
	// messages. Used by the source's fetch loop only.
	next uint64
	// floor is the ack floor a rewind that deleted the consumer creates
	// it again from (0: none in progress).
	floor uint64
}

// consumerName is the source's durable consumer for a Writer on durable:
// durable itself when the source is a whole stream (the names consumers
// of older hubs have), durable-ops on TETHER_OPS.
func (s *source) consumerName(durable string) string {
	if s.cats == nil {
		return durable
	}
	return opsConsumerName(durable)
}

func opsConsumerName(durable string) string { return durable + "-ops" }

// legacyOpsName is the consumer a Writer of an older Tether had for one
// operation category (one per category; merged into durable-ops).
func legacyOpsName(durable, category string) string { return durable + "-" + category }

// filters are the source's consumer's filter subjects (nil: the whole
// stream).
func (s *source) filters() []string {
	var out []string
	for _, c := range s.cats {
		out = append(out, journal.OpsFilter(c))
	}
	return out
}

// subjects are what a publish the source waits for is on (journal.Watch):
// the whole stream's; a publish of another category only costs a fetch.
func (s *source) subjects() string { return journal.StreamSubjects(s.stream) }

// categoryOf is the category of m: the stream's, or on TETHER_OPS the
// one its subject names ("" when it is none of the source's, which the
// decoder rejects).
func (s *source) categoryOf(m jetstream.Msg) string {
	if s.cats == nil {
		return s.category
	}
	c, _, _ := strings.Cut(strings.TrimPrefix(m.Subject(), journal.OpsPrefix), ".")
	if !slices.Contains(s.cats, c) {
		return ""
	}
	return c
}

// NewWriter checks o and fills its defaults.
func NewWriter(o WriterOptions) (*Writer, error) {
	if o.JS == nil || o.Store == nil {
		return nil, errors.New("connlog: a Writer needs the journal's JetStream and a Store")
	}
	var sources []*source
	var ops *source
	for _, s := range allSources {
		if len(o.Categories) > 0 && !slices.Contains(o.Categories, s.category) {
			continue
		}
		if s.filter == "" {
			sources = append(sources, &source{stream: s.stream, category: s.category, decode: s.decode})
			continue
		}
		if ops == nil {
			ops = &source{stream: s.stream, cats: []string{}, decode: s.decode}
			sources = append(sources, ops)
		}
		ops.cats = append(ops.cats, s.category)
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("connlog: no known category in %v", o.Categories)
	}
	if o.Durable == "" {
		o.Durable = DefaultDurable
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.IdleCheck <= 0 {
		o.IdleCheck = DefaultIdleCheck
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.RetentionEvery <= 0 {
		o.RetentionEvery = DefaultRetentionEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{
		o:       o,
		log:     o.Logger.With("component", "connlog", "durable", o.Durable),
		sources: sources,
	}, nil
}

// allSources are the categories a Writer can read (filter: a category
// that shares its stream; NewWriter merges those into one source).
var allSources = []source{
	{stream: journal.StreamConn, category: CategoryConnections, decode: (*Writer).decodeConnectionEvent},
	{stream: journal.StreamRegistry, category: CategoryDeviceIdentityOperations, decode: (*Writer).decodeChange},
	opsSource(CategoryD2CTwinOperations),
	opsSource(CategoryC2DTwinOperations),
	opsSource(CategoryTwinQueries),
	opsSource(CategoryDirectMethods),
	opsSource(CategoryAdministrative),
	{stream: journal.StreamInsights, category: CategoryInsights, decode: (*Writer).decodeInsight},
}

func opsSource(category string) source {
	return source{stream: journal.StreamOps, category: category, filter: journal.OpsFilter(category),
		decode: (*Writer).decodeOperation}
}

// StreamOf is the journal stream that holds the records of category, or
// "" for a category Tether does not log. (The operation categories share
// TETHER_OPS.)
func StreamOf(category string) string {
	for _, s := range allSources {
		if s.category == category {
			return s.stream
		}
	}
	return ""
}

// ConsumerName is the durable consumer a Writer with durable reads
// category from (on stream StreamOf(category)), or "" for a category
// Tether does not log.
func ConsumerName(durable, category string) string {
	for _, s := range allSources {
		if s.category == category {
			if s.filter != "" {
				return opsConsumerName(durable)
			}
			return durable
		}
	}
	return ""
}

// DeleteConsumers removes the durable consumers a Writer with durable made
// for categories (all when none are given), for a destination that is
// gone. Missing consumers are no error. On TETHER_OPS the consumer is
// deleted when no category it filters is left, else the gone categories'
// subjects are taken out of its filter.
func DeleteConsumers(ctx context.Context, js jetstream.JetStream, durable string, categories ...string) error {
	var errs []error
	del := func(stream, name string) {
		if err := js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			errs = append(errs, fmt.Errorf("connlog: delete consumer %s on %s: %w", name, stream, err))
		}
	}
	var gone []string // filter subjects of the operation categories
	for _, s := range allSources {
		if len(categories) > 0 && !slices.Contains(categories, s.category) {
			continue
		}
		if s.filter == "" {
			del(s.stream, durable)
			continue
		}
		gone = append(gone, s.filter)
		if legacyOpsName(durable, s.category) != durable {
			del(s.stream, legacyOpsName(durable, s.category))
		}
	}
	if len(gone) > 0 {
		name := opsConsumerName(durable)
		cons, err := js.Consumer(ctx, journal.StreamOps, name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
		case err != nil:
			errs = append(errs, fmt.Errorf("connlog: consumer %s on %s: %w", name, journal.StreamOps, err))
		default:
			cfg := cons.CachedInfo().Config
			var left []string
			for _, f := range append(cfg.FilterSubjects, cfg.FilterSubject) {
				if f != "" && !slices.Contains(gone, f) {
					left = append(left, f)
				}
			}
			if len(left) == 0 {
				del(journal.StreamOps, name)
				break
			}
			cfg.FilterSubject, cfg.FilterSubjects = "", left
			if _, err := js.UpdateConsumer(ctx, journal.StreamOps, cfg); err != nil {
				errs = append(errs, fmt.Errorf("connlog: consumer %s on %s: dropping %v from its filter: %w", name, journal.StreamOps, gone, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Start creates (or resumes) the durable consumers, within ctx, and starts
// the fetch loops and the retention loop.
func (w *Writer) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return errors.New("connlog: Writer already started")
	}
	for _, s := range w.sources {
		cons, err := w.ensureConsumer(ctx, s)
		if err != nil {
			return fmt.Errorf("connlog: consumer %s on %s: %w", s.consumerName(w.o.Durable), s.stream, err)
		}
		s.cons = cons
		s.next = nextDelivery(cons)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	workCtx, stopWork := context.WithCancel(context.Background())
	w.stopRun, w.stopWork = stopRun, stopWork
	w.done = make(chan struct{})
	w.started = true

	var wg sync.WaitGroup
	for _, s := range w.sources {
		wg.Go(func() { w.run(runCtx, workCtx, s) })
	}
	if w.o.Retention > 0 {
		wg.Go(func() {
			runRetention(runCtx, w.o.Store, w.o.Retention, w.o.RetentionEvery, w.o.Now, w.log)
		})
	}
	go func() {
		wg.Wait()
		close(w.done)
	}()
	w.log.Info("connlog writer started", "durable", w.o.Durable, "batch", w.o.BatchSize, "maxWait", w.o.MaxWait, "idleCheck", w.o.IdleCheck)
	return nil
}

// Stop lets each loop finish its current batch (append and ack) and
// returns when they have ended. If ctx ends first, the batch in progress
// is abandoned unacked (the journal delivers it again after AckWait) and
// Stop returns ctx.Err() once the loops have let go, which takes at most
// about MaxWait. Stop is idempotent; it does not close the Store.
func (w *Writer) Stop(ctx context.Context) error {
	w.mu.Lock()
	if !w.started {
		w.mu.Unlock()
		return nil
	}
	w.started = false
	stopRun, stopWork, done := w.stopRun, w.stopWork, w.done
	w.mu.Unlock()

	stopRun()
	defer stopWork()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		stopWork()
		<-done
		return ctx.Err()
	}
}

// Fetches is how many fetches the Writer's consumers have made.
func (w *Writer) Fetches() uint64 { return w.fetches.Load() }

// Waiting is how many of the Writer's consumers have caught up and wait
// for a publish on their subjects (journal.Watch).
func (w *Writer) Waiting() int { return int(w.waiting.Load()) }

// Processed is the number of journal messages stored and acked so far
// (terminated undecodable ones excluded).
func (w *Writer) Processed() uint64 { return w.processed.Load() }

// Records is the number of records appended so far (a token expiry gives
// two; redelivered ones count again).
func (w *Writer) Records() uint64 { return w.records.Load() }

// Skipped is the number of messages that could not be decoded and were
// terminated.
func (w *Writer) Skipped() uint64 { return w.skipped.Load() }

// Lag is how many journal messages the Writer has not yet stored and
// acked: pending plus delivered-unacked, summed over its consumers. It
// asks the journal (one round trip per stream).
func (w *Writer) Lag(ctx context.Context) (uint64, error) {
	w.mu.Lock()
	var conss []jetstream.Consumer
	for _, s := range w.sources {
		if s.cons != nil {
			conss = append(conss, s.cons)
		}
	}
	w.mu.Unlock()
	if len(conss) == 0 {
		return 0, errors.New("connlog: Writer never started")
	}
	var lag uint64
	for _, cons := range conss {
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("connlog: consumer info: %w", err)
		}
		lag += info.NumPending + uint64(info.NumAckPending)
	}
	return lag, nil
}

// consumerConfig is the durable consumer of a source, delivering from
// policy (and start, for DeliverByStartSequencePolicy).
func (w *Writer) consumerConfig(s *source, policy jetstream.DeliverPolicy, start uint64) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        s.consumerName(w.o.Durable),
		Description:    "Tether resource log writer (connlog): " + s.describe(),
		FilterSubjects: s.filters(),
		DeliverPolicy:  policy,
		OptStartSeq:    start,
		AckPolicy:      jetstream.AckAllPolicy,
		AckWait:        w.o.AckWait,
		MaxAckPending:  max(10*w.o.BatchSize, 10_000),
	}
}

// ensureConsumer returns the durable consumer of stream, ready for a
// Writer that acks all:
//
//   - none yet: it is created and delivers the whole stream;
//   - one that acks all and has no message delivered but unacked: it is
//     kept where it is (its settings brought up to date);
//   - otherwise it is deleted and created again, delivering from just
//     after its ack floor. That is the case when a Writer stopped or
//     crashed with a batch fetched but not acked — an ack of a newer
//     message would also ack that batch before it is stored — and for a
//     consumer of an older Tether that acked explicitly (JetStream cannot
//     change a consumer's AckPolicy). Everything after the floor is
//     delivered again, and the store skips what it already holds.
func (w *Writer) ensureConsumer(ctx context.Context, s *source) (jetstream.Consumer, error) {
	name := s.consumerName(w.o.Durable)
	cons, err := w.o.JS.Consumer(ctx, s.stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if s.cats != nil {
			return w.mergeLegacyOps(ctx, s)
		}
		policy := jetstream.DeliverAllPolicy
		if w.o.DeliverNew {
			policy = jetstream.DeliverNewPolicy
		}
		return w.o.JS.CreateConsumer(ctx, s.stream, w.consumerConfig(s, policy, 0))
	}
	if err != nil {
		return nil, err
	}
	info := cons.CachedInfo()
	if info.Config.AckPolicy == jetstream.AckAllPolicy && info.NumAckPending == 0 {
		return w.o.JS.UpdateConsumer(ctx, s.stream, w.consumerConfig(s, info.Config.DeliverPolicy, info.Config.OptStartSeq))
	}
	floor := info.AckFloor.Stream
	w.log.Info("connlog: resetting the journal consumer to its ack floor",
		"stream", s.stream, "durable", name, "ackPolicy", info.Config.AckPolicy.String(),
		"unacked", info.NumAckPending, "from", floor+1)
	if err := w.o.JS.DeleteConsumer(ctx, s.stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	return w.o.JS.CreateConsumer(ctx, s.stream, w.consumerConfig(s, jetstream.DeliverByStartSequencePolicy, floor+1))
}

// describe names the source's categories.
func (s *source) describe() string {
	if s.cats == nil {
		return s.category
	}
	return strings.Join(s.cats, ", ")
}

// mergeLegacyOps creates the TETHER_OPS consumer of a Writer whose hub had
// one consumer per operation category (before session 9): it starts just
// after the lowest of their ack floors, so nothing they had not stored is
// skipped (the store skips what it holds), and they are deleted once it
// exists. Without any, it starts as a new consumer does.
func (w *Writer) mergeLegacyOps(ctx context.Context, s *source) (jetstream.Consumer, error) {
	var legacy []string
	var from uint64
	for _, c := range s.cats {
		name := legacyOpsName(w.o.Durable, c)
		old, err := w.o.JS.Consumer(ctx, s.stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		floor := old.CachedInfo().AckFloor.Stream + 1
		if len(legacy) == 0 || floor < from {
			from = floor
		}
		legacy = append(legacy, name)
	}
	policy := jetstream.DeliverAllPolicy
	switch {
	case len(legacy) > 0:
		policy = jetstream.DeliverByStartSequencePolicy
		w.log.Info("connlog: merging the per-category journal consumers of TETHER_OPS into one", "from", from, "old", legacy)
	case w.o.DeliverNew:
		policy = jetstream.DeliverNewPolicy
	}
	cons, err := w.o.JS.CreateConsumer(ctx, s.stream, w.consumerConfig(s, policy, from))
	if err != nil {
		return nil, err
	}
	for _, name := range legacy {
		if err := w.o.JS.DeleteConsumer(ctx, s.stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			w.log.Warn("connlog: an old per-category consumer not deleted", "consumer", name, "err", err)
		}
	}
	return cons, nil
}

// run is one stream's fetch loop. While messages come it fetches batch
// after batch; once a fetch comes back empty it watches the source's
// subjects and waits for a publish (see journal.Watch), so an idle
// Writer makes one small fetch per IdleCheck instead of ten a second.
func (w *Writer) run(runCtx, workCtx context.Context, s *source) {
	log := w.log.With("stream", s.stream, "category", s.describe())
	failures := 0
	idle := journal.NewIdle(w.o.JS.Conn(), s.subjects(), &w.waiting, w.o.IdleCheck, idleCheckGrowth*w.o.IdleCheck)
	defer idle.Busy()
	for runCtx.Err() == nil {
		batch := w.o.BatchSize
		watching := idle.Watching()
		if watching {
			batch = min(batch, idleBatch)
		}
		msgs, err := w.fetch(s.cons, batch, !watching)
		if err != nil {
			// Messages received before an error are still handled.
			failures++
			log.Error("connlog: fetch failed", "err", err, "messages", len(msgs), "failures", failures)
			if len(msgs) == 0 {
				journal.Sleep(runCtx, backoff(failures))
				continue
			}
		}
		failures = 0
		if len(msgs) > 0 {
			idle.Busy()
			w.handle(runCtx, workCtx, log, s, msgs)
			if len(msgs) < batch {
				// Less than a batch was waiting: let the next one
				// gather in the journal (see fetch).
				journal.Sleep(runCtx, w.o.MaxWait)
			}
			continue
		}
		if err := idle.Caught(runCtx); err != nil {
			log.Warn("connlog: cannot watch the journal; polling", "err", err)
			journal.Sleep(runCtx, w.o.MaxWait)
		}
	}
}

// fetch pulls one batch: up to n messages, of those the journal holds
// now (busy) or of what came within MaxWait (a Writer that was idle). The
// server ends the request, so every message it delivered is in the batch
// (none is left delivered-but-unseen until AckWait).
//
// A busy Writer does not keep a pull waiting in the journal: a waiting
// pull makes the journal server wake the consumer and send each message
// on its own as it is stored (at 5,000 events/s a consumer wake-up, a
// write and the client's dispatch per event), while a pull of what
// gathered during the pause after the last batch (run) is one pass over
// the stored messages, sent together. The log is at most that pause
// (MaxWait) later, as it was with a waiting pull.
func (w *Writer) fetch(cons jetstream.Consumer, n int, busy bool) ([]jetstream.Msg, error) {
	w.fetches.Add(1)
	var batch jetstream.MessageBatch
	var err error
	if busy {
		batch, err = cons.FetchNoWait(n)
	} else {
		batch, err = cons.Fetch(n, jetstream.FetchMaxWait(w.o.MaxWait))
	}
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return msgs, err
	}
	return msgs, nil
}

// handle decodes, appends and acks one batch.
func (w *Writer) handle(runCtx, workCtx context.Context, log *slog.Logger, s *source, msgs []jetstream.Msg) {
	recs := make([]Record, 0, len(msgs))
	good := 0
	for _, m := range msgs {
		rs, err := s.decode(w, s.categoryOf(m), m, recs)
		if err != nil {
			// Not Term: with AckAll it would ack the batch's earlier
			// messages before they are stored. The batch's ack drops it.
			w.skipped.Add(1)
			log.Warn("connlog: dropping undecodable journal message", "subject", m.Subject(), "err", err)
			continue
		}
		recs = rs
		good++
	}
	for attempt := 1; good > 0; attempt++ {
		err := w.o.Store.Append(workCtx, recs)
		if err == nil {
			break
		}
		if workCtx.Err() == nil {
			log.Error("connlog: append failed", "err", err, "records", len(recs), "attempt", attempt)
		}
		if workCtx.Err() != nil || !journal.Sleep(runCtx, backoff(attempt)) {
			log.Warn("connlog: stopping with a batch not stored; the journal will deliver it again", "messages", good)
			return
		}
	}
	expected := s.next
	top, ok := w.contiguous(s, msgs)
	if !ok {
		// A delivery between the last batch and this one never reached
		// the Writer: an ack would acknowledge it unstored. The consumer
		// delivers again from its ack floor instead (the store skips
		// what it has).
		log.Warn("connlog: a journal delivery never reached the writer; delivering again from the ack floor",
			"expected", expected, "got", consumerSeq(msgs[0]), "messages", len(msgs))
		w.rewind(runCtx, workCtx, log, s)
		return
	}
	// One ack, of the highest stream sequence, acknowledges the batch
	// (AckAll). A batch usually ends with it, but redeliveries come
	// before new messages and may even follow them, so it is looked for.
	ctx, cancel := context.WithTimeout(workCtx, 5*time.Second)
	defer cancel()
	if err := top.DoubleAck(ctx); err != nil {
		log.Warn("connlog: ack failed; messages will be delivered again (and skipped by the store)", "err", err)
		return
	}
	w.processed.Add(uint64(good))
	w.records.Add(uint64(len(recs)))
}

// nextDelivery is the consumer sequence of cons's next delivery.
func nextDelivery(cons jetstream.Consumer) uint64 {
	if info := cons.CachedInfo(); info != nil {
		return info.Delivered.Consumer + 1
	}
	return 0
}

// consumerSeq is m's consumer (delivery) sequence, 0 if unreadable.
func consumerSeq(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return md.Sequence.Consumer
}

// contiguous reports whether msgs are the deliveries s expects next,
// without a gap, and moves s.next past them; it also returns the message
// of msgs with the highest stream sequence (the one whose ack, AckAll,
// acknowledges the batch: a batch usually ends with it, but redeliveries
// come before new messages and may even follow them). Each message's
// metadata is parsed once, here. A gap is a delivery the journal made to
// a fetch whose reply never reached the Writer: in a cluster a replicated
// consumer sends a message once its delivery is committed, so a leader
// that dies or stops between the two leaves it delivered but never sent,
// and a fetch the client stopped waiting for (its MaxWait plus a second)
// gets its messages after it is gone.
func (w *Writer) contiguous(s *source, msgs []jetstream.Msg) (top jetstream.Msg, ok bool) {
	ok = true
	top, topSeq := msgs[len(msgs)-1], uint64(0)
	for _, m := range msgs {
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Consumer
			if md.Sequence.Stream > topSeq {
				top, topSeq = m, md.Sequence.Stream
			}
		}
		if seq == 0 || seq != s.next {
			ok = false
		}
		s.next = seq + 1
	}
	return top, ok
}

// rewind makes s's consumer deliver everything after its ack floor again
// (JetStream's consumer reset; with a server that has none, the consumer
// is deleted and created again from the floor). It retries until it
// succeeds or the Writer stops; a Writer stopped meanwhile leaves the
// consumer with unacked deliveries, which Start resets likewise.
func (w *Writer) rewind(runCtx, workCtx context.Context, log *slog.Logger, s *source) {
	for attempt := 1; ; attempt++ {
		err := w.rewindOnce(workCtx, s)
		if err == nil {
			return
		}
		log.Warn("connlog: cannot rewind the journal consumer; retrying", "err", err, "attempt", attempt)
		if !journal.Sleep(runCtx, backoff(attempt)) {
			return
		}
	}
}

func (w *Writer) rewindOnce(ctx context.Context, s *source) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	name := s.consumerName(w.o.Durable)
	if s.floor == 0 {
		resp, err := w.o.JS.ResetConsumer(ctx, s.stream, name)
		if err == nil {
			s.next = resp.Delivered.Consumer + 1
			return nil
		}
		// The consumer's leader answers Info but not the reset: a server
		// without it. Otherwise there is no leader now: try again later.
		info, ierr := s.cons.Info(ctx)
		if ierr != nil {
			return fmt.Errorf("reset: %w; info: %w", err, ierr)
		}
		s.floor = info.AckFloor.Stream + 1
		if err := w.o.JS.DeleteConsumer(ctx, s.stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.floor = 0
			return err
		}
	}
	cons, err := w.o.JS.CreateConsumer(ctx, s.stream, w.consumerConfig(s, jetstream.DeliverByStartSequencePolicy, s.floor))
	if err != nil {
		return err
	}
	s.floor = 0
	w.mu.Lock()
	s.cons = cons
	w.mu.Unlock()
	s.next = nextDelivery(cons)
	return nil
}

// sourceID names a journal message when its payload has no id: its
// Nats-Msg-Id, else stream and sequence (stable across redeliveries).
func sourceID(m jetstream.Msg) string {
	if id := m.Headers().Get(jetstream.MsgIDHeader); id != "" {
		return id
	}
	if md, err := m.Metadata(); err == nil {
		return md.Stream + "#" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	return ""
}

func (w *Writer) decodeConnectionEvent(_ string, m jetstream.Msg, dst []Record) ([]Record, error) {
	e, err := journal.DecodeConnectionEvent(m.Data())
	if err != nil {
		return dst, err
	}
	if e.ID == "" {
		e.ID = sourceID(m)
	}
	out, err := AppendConnectionEvent(dst, w.o.Resource, e)
	if err != nil {
		return dst, err
	}
	for i := len(dst); i < len(out); i++ {
		if err := out[i].Validate(); err != nil {
			return dst, err
		}
	}
	return out, nil
}

func (w *Writer) decodeChange(_ string, m jetstream.Msg, dst []Record) ([]Record, error) {
	var c registry.Change
	if err := json.Unmarshal(m.Data(), &c); err != nil {
		return dst, err
	}
	if c.ID == "" {
		c.ID = sourceID(m)
	}
	r := FromChange(w.o.Resource, c)
	if err := r.Validate(); err != nil {
		return dst, err
	}
	return append(dst, r), nil
}

// decodeInsight maps a derived insight record (incident, flap change).
func (w *Writer) decodeInsight(_ string, m jetstream.Msg, dst []Record) ([]Record, error) {
	ir, err := insight.DecodeRecord(m.Data())
	if err != nil {
		return dst, err
	}
	r, err := FromInsight(w.o.Resource, ir)
	if err != nil {
		return dst, err
	}
	if err := r.Validate(); err != nil {
		return dst, err
	}
	return append(dst, r), nil
}

// decodeOperation maps an operation of category (the source's: one whose
// payload names another category is not this source's to log, and is
// dropped as undecodable).
func (w *Writer) decodeOperation(category string, m jetstream.Msg, dst []Record) ([]Record, error) {
	op, err := journal.DecodeOperation(m.Data())
	if err != nil {
		return dst, err
	}
	if op.Category != category {
		return dst, fmt.Errorf("%w: operation %s of category %q on a %s subject", journal.ErrMalformed, op.ID, op.Category, category)
	}
	r, err := FromOperation(w.o.Resource, op)
	if err != nil {
		return dst, err
	}
	if err := r.Validate(); err != nil {
		return dst, err
	}
	return append(dst, r), nil
}

// backoff is 100 ms doubling per attempt, capped at 5 s.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt-1, 6)
	return min(d, 5*time.Second)
}
