package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// DeviceCounts returns how many device identities the registry holds and
// how many of them are enabled.
type DeviceCounts func() (total, enabled int)

// DeliveryCounts are one subscription's cumulative delivery outcomes (the
// delivery engine's counters since it started).
type DeliveryCounts struct {
	Subscription                             string
	Delivered, Failed, DeadLettered, Dropped uint64
	// Lag is the age of the oldest event the subscription has not yet
	// delivered (0: none), sampled as EventSubscriptionLag.
	Lag time.Duration
}

// CollectorOptions configure NewCollector. JS and Store are required.
type CollectorOptions struct {
	JS    jetstream.JetStream
	Store *Store
	// Devices gives the registry's counts; nil: not sampled.
	Devices DeviceCounts
	// Deliveries gives the delivery engine's counters; nil: none.
	Deliveries func() []DeliveryCounts
	// Gauges gives more gauges of the catalog (the throttles':
	// tlsHandshakesInProgress, tlsHandshakesWaiting, dailyMessageQuotaUsed),
	// sampled once a second with the others and on /metrics; nil: none.
	Gauges func(now time.Time) []GaugeSample
	// Flapping gives the number of flapping devices (the insight
	// engine's); nil: flappingDevices is not sampled.
	Flapping func() int
	// Refresh is how soon after a change of the connected count the
	// newest second's connectedDeviceCount is taken again, at most (the
	// history keeps one sample a second: the last one taken in it); an
	// unchanged count is taken once a second. Default 100 ms.
	Refresh time.Duration
	// LagEvery is how often the durable consumers' lag is asked for
	// while the journal is in use; default 5 s. An idle journal's lag is
	// asked for once a minute (lagIdleEvery).
	LagEvery time.Duration
	// Now is the sampling clock; default time.Now.
	Now func() time.Time
	// Conn, when set, is the node's shared reader of TETHER_CONN (the
	// insight feed reads it too): connection events come through it,
	// decoded once for all its readers, and the app starts and stops it.
	// Nil: the collector runs a fanout of its own.
	Conn   *journal.ConnFanout
	Logger *slog.Logger
}

// Collector turns the journal (and the hub's counters) into samples in
// a Store and into Prometheus metrics. See the package doc.
type Collector struct {
	o    CollectorOptions
	log  *slog.Logger
	prom *promMetrics

	life sync.Mutex // Start/Stop; the consumers' handlers take mu

	mu         sync.Mutex
	connected  map[string]connState // subject device token → last state
	stateWhole bool                 // the start-up snapshot has been applied
	nConn      atomic.Int64
	changed    chan struct{} // nConn changed since the sampler last looked (cap 1)
	samples    atomic.Int64  // the sampler's wake-ups (a test counts them)
	lagPolls   atomic.Int64  // pollLag calls (a test counts them)
	lastDeliv  map[string]DeliveryCounts
	lagged     map[string]bool       // subscriptions with a lag series on /metrics
	lags       map[[2]string]float64 // stream, consumer → lag
	ownLag     [3]atomic.Int64       // conn, telemetry, ops: NumPending after the last message

	latMu   sync.Mutex
	latency map[[2]string]*latencySeries // subscription, event type → ObserveDelivery's series

	consumers []jetstream.ConsumeContext
	connOff   func()              // removes the collector from the connection-event fanout
	ownFan    *journal.ConnFanout // the fanout the collector started itself (no CollectorOptions.Conn)
	stop      context.CancelFunc
	done      chan struct{}
	started   bool
}

type connState struct {
	seq       uint64
	connected bool
}

// ownConsumer names the collector's own readers (ephemeral consumers, the fanout)
// on the lag gauge.
const ownConsumer = "metrics"

// NewCollector checks o.
func NewCollector(o CollectorOptions) (*Collector, error) {
	if o.JS == nil || o.Store == nil {
		return nil, errors.New("metrics: CollectorOptions.JS and Store are required")
	}
	if o.Refresh <= 0 || o.Refresh > time.Second {
		o.Refresh = 100 * time.Millisecond
	}
	if o.LagEvery <= 0 {
		o.LagEvery = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Collector{
		o: o, log: o.Logger.With("component", "metrics"),
		changed:   make(chan struct{}, 1),
		connected: map[string]connState{}, lastDeliv: map[string]DeliveryCounts{}, lags: map[[2]string]float64{},
	}
	c.prom = newPromMetrics(func() float64 { return float64(c.nConn.Load()) })
	return c, nil
}

// Handler serves /metrics (Prometheus text, or OpenMetrics by Accept).
func (c *Collector) Handler() http.Handler { return c.prom.handler() }

// Register adds collectors of other parts of the hub (the alert engine's)
// to /metrics.
func (c *Collector) Register(cs ...prometheus.Collector) error {
	for _, x := range cs {
		if err := c.prom.reg.Register(x); err != nil {
			return err
		}
	}
	return nil
}

// Store is the history the collector fills.
func (c *Collector) Store() *Store { return c.o.Store }

// Connected is the number of connected devices now.
func (c *Collector) Connected() int { return int(c.nConn.Load()) }

// Start reads the devices' connection state from the journal (within
// ctx), then follows the journal and samples (see run) until Stop.
func (c *Collector) Start(ctx context.Context) error {
	c.life.Lock()
	defer c.life.Unlock()
	if c.started {
		return errors.New("metrics: collector already started")
	}
	if err := c.startState(ctx); err != nil {
		c.stopConsumers()
		return err
	}
	if err := c.startCounts(ctx); err != nil {
		c.stopConsumers()
		return err
	}
	runCtx, stop := context.WithCancel(context.Background())
	c.stop, c.done, c.started = stop, make(chan struct{}), true
	go c.run(runCtx)
	return nil
}

// Stop ends the consumers and the sampler and writes what is pending.
// Idempotent; it does not close the Store.
func (c *Collector) Stop(ctx context.Context) error {
	c.life.Lock()
	if !c.started {
		c.life.Unlock()
		return nil
	}
	c.started = false
	c.stopConsumers()
	stop, done := c.stop, c.done
	c.life.Unlock()
	stop()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.o.Store.Flush(ctx)
}

func (c *Collector) stopConsumers() {
	for _, cc := range c.consumers {
		cc.Stop()
	}
	c.consumers = nil
	if c.connOff != nil {
		c.connOff()
		c.connOff = nil
	}
	if c.ownFan != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.ownFan.Stop(ctx)
		cancel()
		c.ownFan = nil
	}
}

// startState reads the last connected/disconnected event of every device
// and returns once that snapshot has been applied; later events reach
// applyState through countConn.
func (c *Collector) startState(ctx context.Context) error {
	st, err := c.o.JS.Stream(ctx, journal.StreamConn)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	// Whether there is any device state to wait for (the stream may hold
	// only refusals): one subject per device and kind.
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(journal.ConnPrefix+">"))
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	states := 0
	for subj := range info.State.Subjects {
		if isStateSubject(subj) {
			states++
		}
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{journal.ConnPrefix + "*.connected", journal.ConnPrefix + "*.disconnected"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	caughtUp := make(chan struct{})
	var once sync.Once
	if states == 0 {
		once.Do(func() { c.markWhole(); close(caughtUp) })
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		c.applyState(m.Subject(), md.Sequence.Stream)
		if md.NumPending == 0 {
			once.Do(func() { c.markWhole(); close(caughtUp) })
		}
	})
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	select {
	case <-caughtUp:
		// From here on the counting consumer (startCounts) applies each
		// new event's state too: one delivery per event instead of two.
		// It may replay older events; applyState ignores those.
		cc.Stop()
		return nil
	case <-ctx.Done():
		cc.Stop()
		return fmt.Errorf("metrics: reading the devices' connection state: %w", ctx.Err())
	}
}

func (c *Collector) markWhole() {
	c.mu.Lock()
	c.stateWhole = true
	c.mu.Unlock()
}

// isStateSubject: a connected or disconnected event's subject (not a
// refusal's), the ones that change a device's connection state.
func isStateSubject(subj string) bool {
	return strings.HasSuffix(subj, "."+string(presence.Connected)) || strings.HasSuffix(subj, "."+string(presence.Disconnected))
}

// applyState records a device's connect or disconnect at stream sequence
// seq; an older one than what is known is ignored.
func (c *Collector) applyState(subject string, seq uint64) {
	rest := strings.TrimPrefix(subject, journal.ConnPrefix)
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return
	}
	dev, kind := rest[:i], rest[i+1:]
	connected := kind == string(presence.Connected)
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.connected[dev]
	if ok && cur.seq >= seq {
		return
	}
	if connected && !(ok && cur.connected) {
		c.nConn.Add(1)
		c.connChanged()
	}
	if !connected && ok && cur.connected {
		c.nConn.Add(-1)
		c.connChanged()
	}
	// The snapshot of last messages per subject may come in any order, so
	// a disconnect is remembered until it is whole; after that events come
	// in journal order and a disconnected device needs no entry.
	if !connected && c.stateWhole {
		delete(c.connected, dev)
		return
	}
	c.connected[dev] = connState{seq, connected}
}

// startCounts follows TETHER_CONN (through the connection-event fanout),
// TETHER_TELEMETRY (headers only) and TETHER_OPS from the Store's
// positions.
func (c *Collector) startCounts(ctx context.Context) error {
	pos, err := c.startPosition(ctx, journal.StreamConn)
	if err != nil {
		return err
	}
	fan := c.o.Conn
	if fan == nil {
		fan = journal.NewConnFanout(c.o.JS, journal.FanoutOptions{Logger: c.o.Logger})
		c.ownFan = fan
	}
	c.connOff = fan.Add(pos, c.countConnBatch)
	if c.ownFan != nil {
		fan.Start()
	}
	for _, s := range []struct {
		stream      string
		headersOnly bool
		handle      func(jetstream.Msg, *jetstream.MsgMetadata)
	}{
		{journal.StreamTelemetry, true, c.countTelemetry},
		{journal.StreamOps, false, c.countOps},
	} {
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy, HeadersOnly: s.headersOnly}
		pos, err := c.startPosition(ctx, s.stream)
		if err != nil {
			return err
		}
		if pos > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos+1
		}
		cons, err := c.o.JS.OrderedConsumer(ctx, s.stream, cfg)
		if err != nil {
			return fmt.Errorf("metrics: consumer on %s: %w", s.stream, err)
		}
		handle := s.handle
		cc, err := cons.Consume(func(m jetstream.Msg) {
			md, err := m.Metadata()
			if err != nil {
				c.log.Warn("metrics: journal message without metadata", "subject", m.Subject(), "err", err)
				return
			}
			handle(m, md)
		})
		if err != nil {
			return fmt.Errorf("metrics: consumer on %s: %w", s.stream, err)
		}
		c.consumers = append(c.consumers, cc)
	}
	return nil
}

// startPosition is the stored position of stream, or 0 when the stream
// ends before it (the journal was made anew under a kept history: its
// sequences start again at 1, and following the old position would skip
// them).
func (c *Collector) startPosition(ctx context.Context, stream string) (uint64, error) {
	pos := c.o.Store.Position(stream)
	if pos == 0 {
		return 0, nil
	}
	st, err := c.o.JS.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	if last := info.State.LastSeq; pos > last {
		c.log.Warn("metrics: the history is ahead of the journal (a new journal?); counting the journal from its start",
			"stream", stream, "position", pos, "journalLast", last)
		return 0, nil
	}
	return pos, nil
}

// resultType is the ResultType dimension: the IoT Hub code, "Success"
// for none.
func resultType(r presence.Result) string {
	if r.Type == "" {
		return "Success"
	}
	return r.Type
}

// authFailureReason is the Reason dimension of deviceAuthFailures.
func authFailureReason(f presence.AuthFailure) string {
	if f == presence.AuthNone {
		return string(presence.AuthOther)
	}
	return string(f)
}

// tokenRenewal is the TokenRenewal dimension of deviceConnects: "true"
// for a connect that completed a SAS-token renewal, "false" otherwise (a
// refusal never is one). The Fleet page draws renewals apart from real
// drops from it instead of scanning the log.
func tokenRenewal(ev *presence.ConnectionEvent) string {
	if ev.Kind == presence.Connected && ev.TokenRenewal {
		return "true"
	}
	return "false"
}

func orUnknown(s string) string {
	if s == "" {
		return "Unknown"
	}
	return s
}

// countConnBatch counts the connection events of one fanout batch.
func (c *Collector) countConnBatch(b journal.FanoutBatch) {
	for i := range b.Events {
		c.countConn(&b.Events[i])
	}
	c.ownLag[0].Store(int64(b.Pending))
}

func (c *Collector) countConn(ce *journal.ConnEvent) {
	if isStateSubject(ce.Subject) {
		c.applyState(ce.Subject, ce.Seq)
	}
	ev := ce.Event
	if ev == nil {
		c.log.Warn("metrics: undecodable connection event", "subject", ce.Subject, "err", ce.Err)
		c.o.Store.Apply(journal.StreamConn, ce.Seq, func(Adder) {})
		return
	}
	t := ev.Time
	if t.IsZero() {
		t = ce.Stored
	}
	rt, proto := resultType(ev.Result), orUnknown(ev.Protocol)
	c.o.Store.Apply(journal.StreamConn, ce.Seq, func(add Adder) {
		switch ev.Kind {
		case presence.Connected, presence.Refused:
			// A refusal may stand for several attempts, each a sample of 1.
			n := max(ev.Count, 1)
			renewal := tokenRenewal(ev)
			for range n {
				add(Connects, t, 1, DimResultType, rt, DimProtocol, proto, DimTokenRenewal, renewal)
			}
			c.prom.connects.WithLabelValues(rt, proto).Add(float64(n))
			if ev.Kind == presence.Refused && ev.Reason == presence.ReasonAuthFailed {
				why := authFailureReason(ev.AuthFailure)
				add(AuthFailures, t, 1, DimReason, why)
				c.prom.authFailures.WithLabelValues(why).Inc()
			}
			if scope, connect, ok := presence.ThrottleScope(ev.Reason); ok && connect && ev.Kind == presence.Refused {
				for range n {
					add(ThrottledConnects, t, 1, DimScope, scope)
				}
				c.prom.throttledConnects.WithLabelValues(scope).Add(float64(n))
			}
		case presence.Disconnected:
			reason := orUnknown(string(ev.Reason))
			add(Disconnects, t, 1, DimResultType, rt, DimProtocol, proto, DimReason, reason)
			c.prom.disconnects.WithLabelValues(rt, proto, reason).Inc()
			if scope, connect, ok := presence.ThrottleScope(ev.Reason); ok && !connect {
				add(SendThrottle, t, 1, DimScope, scope)
				c.prom.throttledMessages.WithLabelValues(scope).Inc()
			}
		}
	})
}

func (c *Collector) countTelemetry(m jetstream.Msg, md *jetstream.MsgMetadata) {
	c.ownLag[1].Store(int64(md.NumPending))
	t, ok := journal.TelemetryTime(m.Headers())
	if !ok {
		t = md.Timestamp
	}
	c.o.Store.Apply(journal.StreamTelemetry, md.Sequence.Stream, func(add Adder) {
		add(TelemetryIngress, t, 1)
	})
	c.prom.telemetry.Inc()
}

// C2DSent counts one cloud-to-device message handed to the broker.
func (c *Collector) C2DSent() {
	c.o.Store.Add(C2DSent, c.o.Now(), 1)
	c.prom.c2d.Inc()
}

// ObserveDelivery records the latency of one delivered event (the
// delivery engine's ObserveLatency).
func (c *Collector) ObserveDelivery(subscription, eventType string, d time.Duration) {
	ls := c.latencySeries(subscription, eventType)
	c.o.Store.add(ls.key, c.o.Now(), float64(d)/float64(time.Millisecond))
	ls.prom.Observe(d.Seconds())
}

// latencySeries is what ObserveDelivery writes to for one subscription
// and event type: its Store series (the dimensions' key built once) and
// its histogram. Called once per delivered event, building both each time
// (the key's strings, sort and join; the label lookup) was about 1 % of
// the hub's CPU at 5,000 events/s (issue 21). Histogram children are
// never deleted, so a kept one stays the one /metrics shows.
func (c *Collector) latencySeries(subscription, eventType string) *latencySeries {
	k := [2]string{subscription, eventType}
	c.latMu.Lock()
	defer c.latMu.Unlock()
	if ls := c.latency[k]; ls != nil {
		return ls
	}
	if c.latency == nil {
		c.latency = map[[2]string]*latencySeries{}
	}
	ls := &latencySeries{
		key:  seriesKey{DeliveryLatency, dimsKey([]string{DimSubscription, subscription, DimEventType, eventType})},
		prom: c.prom.latency.WithLabelValues(subscription, eventType),
	}
	c.latency[k] = ls
	return ls
}

type latencySeries struct {
	key  seriesKey
	prom prometheus.Observer
}

// run samples once a second, just after the second begins: everything
// (Sample), the consumers' lag every LagEvery, and writes the history
// when it holds counts or a minute of gauges (Store.FlushDue).
// Between those, a change of the connected count (connChanged) takes
// connectedDeviceCount again, at most once per Refresh, so the newest
// second shows a drop within about Refresh. An idle hub wakes it once a
// second, not every Refresh (it used to tick every Refresh whether or not
// anything had changed: ten wake-ups a second of an idle process).
func (c *Collector) run(ctx context.Context) {
	defer close(c.done)
	var lastLag, lastTick time.Time
	var lagAt [3]uint64 // journalPositions when the lag was last asked for
	lastSecond := int64(-1 << 62)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := c.o.Now()
		next := now.Truncate(time.Second).Add(time.Second + time.Millisecond)
		t.Reset(next.Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.changed:
			// Not sooner than Refresh after the last tick: a connect storm
			// changes the count thousands of times a second.
			if wait := lastTick.Add(c.o.Refresh).Sub(c.o.Now()); wait > 0 {
				t.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}
		c.samples.Add(1)
		now = c.o.Now()
		lastTick = now
		if now.Unix() == lastSecond {
			c.o.Store.Tick(now, []GaugeSample{{Metric: ConnectedDevices, Value: float64(c.nConn.Load())}})
			continue
		}
		lastSecond = now.Unix()
		if since := now.Sub(lastLag); since >= c.o.LagEvery && (since >= lagIdleEvery || c.lagMayHaveChanged(lagAt)) {
			lastLag = now
			lagAt = c.journalPositions()
			lctx, cancel := context.WithTimeout(ctx, c.o.LagEvery)
			c.pollLag(lctx)
			cancel()
		}
		c.Sample(now)
		// Not ctx: Stop waits for this write rather than abort it.
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c.o.Store.FlushDue(fctx); err != nil {
			c.log.Error("metrics: writing the history failed; retrying with the next sample", "err", err)
		}
		cancel()
	}
}

// lagIdleEvery is how often the consumers' lag is asked for while the
// journal is idle: each poll is eight JetStream API requests, an idle
// hub's largest periodic work after the sampler itself.
const lagIdleEvery = time.Minute

// lagMayHaveChanged reports whether the consumers' lag can differ from
// the last poll's: it found some lag, or the collector has read journal
// messages since (at: journalPositions then). A lag rises only when a
// stream gets messages, and the collector reads every message of the
// connection, telemetry and operations streams. Registry changes it does
// not read: while nothing else happens, their lag is asked for once every
// lagIdleEvery.
func (c *Collector) lagMayHaveChanged(at [3]uint64) bool {
	if c.journalPositions() != at {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.lags {
		if v != 0 {
			return true
		}
	}
	return false
}

// journalPositions is how far the collector has read the streams it
// follows.
func (c *Collector) journalPositions() [3]uint64 {
	s := c.o.Store
	return [3]uint64{s.Position(journal.StreamConn), s.Position(journal.StreamTelemetry), s.Position(journal.StreamOps)}
}

// connChanged tells the sampler that the connected count changed.
func (c *Collector) connChanged() {
	select {
	case c.changed <- struct{}{}:
	default: // one is pending already
	}
}

// Sample takes the gauges and the delivery counters at now and records
// them in the Store (the sampler calls it once a second; tests may call
// it with their own clock).
func (c *Collector) Sample(now time.Time) {
	gauges := []GaugeSample{{Metric: ConnectedDevices, Value: float64(c.nConn.Load())}}
	if c.o.Devices != nil {
		total, enabled := c.o.Devices()
		gauges = append(gauges,
			GaugeSample{Metric: TotalDevices, Value: float64(total)},
			GaugeSample{Metric: EnabledDevices, Value: float64(enabled)})
		c.prom.devices.WithLabelValues("enabled").Set(float64(enabled))
		c.prom.devices.WithLabelValues("disabled").Set(float64(total - enabled))
	}
	if c.o.Gauges != nil {
		for _, g := range c.o.Gauges(now) {
			gauges = append(gauges, g)
			if pg, ok := c.prom.sampled[g.Metric]; ok {
				pg.Set(g.Value)
			}
		}
	}
	if c.o.Flapping != nil {
		n := float64(c.o.Flapping())
		gauges = append(gauges, GaugeSample{Metric: FlappingDevices, Value: n})
		c.prom.flapping.Set(n)
	}
	c.mu.Lock()
	c.lags[[2]string{journal.StreamConn, ownConsumer}] = float64(c.ownLag[0].Load())
	c.lags[[2]string{journal.StreamTelemetry, ownConsumer}] = float64(c.ownLag[1].Load())
	c.lags[[2]string{journal.StreamOps, ownConsumer}] = float64(c.ownLag[2].Load())
	for k, v := range c.lags {
		gauges = append(gauges, GaugeSample{Metric: JournalLag, Dims: []string{DimStream, k[0], DimConsumer, k[1]}, Value: v})
		c.prom.lag.WithLabelValues(k[0], k[1]).Set(v)
	}
	c.mu.Unlock()
	var deliv []DeliveryCounts
	if c.o.Deliveries != nil {
		deliv = c.o.Deliveries()
		gauges = c.subscriptionLags(deliv, gauges)
	}
	c.o.Store.Tick(now, gauges)
	c.sampleDeliveries(now, deliv)
}

// subscriptionLags adds each subscription's lag to gauges and /metrics,
// and drops the series of subscriptions that are gone.
func (c *Collector) subscriptionLags(deliv []DeliveryCounts, gauges []GaugeSample) []GaugeSample {
	seen := make(map[string]bool, len(deliv))
	for _, d := range deliv {
		v := d.Lag.Seconds()
		seen[d.Subscription] = true
		gauges = append(gauges, GaugeSample{Metric: SubscriptionLag, Dims: []string{DimSubscription, d.Subscription}, Value: v})
		c.prom.subLag.WithLabelValues(d.Subscription).Set(v)
	}
	c.mu.Lock()
	for name := range c.lagged {
		if !seen[name] {
			c.prom.subLag.DeleteLabelValues(name)
		}
	}
	c.lagged = seen
	c.mu.Unlock()
	return gauges
}

// sampleDeliveries adds the delivery outcomes since the last sample.
func (c *Collector) sampleDeliveries(now time.Time, deliv []DeliveryCounts) {
	for _, d := range deliv {
		c.mu.Lock()
		last, ok := c.lastDeliv[d.Subscription]
		c.lastDeliv[d.Subscription] = d
		c.mu.Unlock()
		if !ok {
			last = DeliveryCounts{}
		}
		for _, r := range []struct {
			result    string
			cur, prev uint64
		}{
			{"success", d.Delivered, last.Delivered},
			{"failure", d.Failed, last.Failed},
			{"deadLettered", d.DeadLettered, last.DeadLettered},
			{"dropped", d.Dropped, last.Dropped},
		} {
			n := r.cur - r.prev
			if r.cur < r.prev { // the subscription's runner started again
				n = r.cur
			}
			if n == 0 {
				continue
			}
			c.o.Store.Add(Deliveries, now, float64(n), DimSubscription, d.Subscription, DimResult, r.result)
			c.prom.deliveries.WithLabelValues(d.Subscription, r.result).Add(float64(n))
		}
	}
}

// pollLag asks JetStream for the durable consumers' lag on the hub's
// streams (ephemeral consumers have random names and are left out).
func (c *Collector) pollLag(ctx context.Context) {
	c.lagPolls.Add(1)
	lags := map[[2]string]float64{}
	for _, name := range []string{journal.StreamConn, journal.StreamRegistry, journal.StreamTelemetry, journal.StreamOps} {
		st, err := c.o.JS.Stream(ctx, name)
		if err != nil {
			c.log.Debug("metrics: stream info", "stream", name, "err", err)
			continue
		}
		l := st.ListConsumers(ctx)
		for info := range l.Info() {
			if info.Config.Durable == "" {
				continue
			}
			lags[[2]string{name, info.Name}] = float64(info.NumPending) + float64(info.NumAckPending)
		}
		if err := l.Err(); err != nil {
			c.log.Debug("metrics: consumer list", "stream", name, "err", err)
		}
	}
	c.mu.Lock()
	for k := range c.lags {
		if _, ok := lags[k]; !ok {
			c.prom.lag.DeleteLabelValues(k[0], k[1])
		}
	}
	c.lags = lags
	c.mu.Unlock()
}
