package delivery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
)

// Options configure an Engine. JS and Store are required; everything else
// has a default.
type Options struct {
	// JS is the journal's JetStream (journal.Journal.JS): the engine reads
	// TETHER_CONN, TETHER_REGISTRY and TETHER_TELEMETRY through one durable
	// consumer per subscription and stream.
	JS jetstream.JetStream
	// Store holds the subscriptions (kvstore in the hub).
	Store events.SubscriptionStore
	// Resource names the hub in the events' topic/source.
	Resource events.Resource
	// HubHost is the hub's host name, for telemetry events (connection
	// events and registry changes carry their own).
	HubHost string
	// Client sends the webhook POSTs. nil: a client that does not follow
	// redirects (a 3xx is a failed delivery) and keeps MaxInFlightPerSub
	// connections per endpoint alive.
	Client *http.Client
	// Endpoints, with Client nil, is checked on every connection the
	// default client dials (events.EndpointPolicy.Control), so a name that
	// resolves to a refused address is not reached; nil: no check (the
	// hub always sets it).
	Endpoints *events.EndpointPolicy
	// Destinations deliver by destination type (events.Destination.Kind).
	// New adds WebHook (Client, Timeout, Origin) and Stream (streams on JS,
	// Replicas) unless given; Command and Email need the hub's policy and
	// mail server (NewCommandDestination, NewEmailDestination). A
	// subscription of a type without one is not delivered: its attempts
	// fail, and are retried, with an error that says so.
	Destinations map[string]Destination
	// Clock drives retries, time-to-live, the renewal grace and the POST
	// timeout. nil: SystemClock.
	Clock  Clock
	Logger *slog.Logger
	// Origin is WebHook-Request-Origin on CloudEvents deliveries; use the
	// same value as the Handshaker's. Default events.DefaultOrigin.
	Origin string
	// DeadLetters keeps dead-lettered events. nil: the JetStream store
	// (stream TETHER_DEADLETTER) on JS, created by New.
	DeadLetters DeadLetterStore
	// Replicas of the TETHER_DEADLETTER stream when New creates it.
	Replicas int

	// Timeout bounds each POST, answer included, and each stream publish;
	// default 30 s (Event Grid's). Commands have their own
	// (timeoutInSeconds).
	Timeout time.Duration
	// Schedule is the delay after the n-th failed attempt (n from 1); the
	// last delay repeats. Default EventGridSchedule.
	Schedule []time.Duration
	// Jitter spreads each delay by up to ±Jitter of it (0.1 = ±10 %);
	// default 0.1, negative for none.
	Jitter float64
	// Rand returns numbers in [0, 1) for the jitter; default math/rand/v2.
	Rand func() float64

	// MaxInFlightPerSub bounds concurrent POSTs per subscription (each to
	// a different set of devices); default 32.
	MaxInFlightPerSub int
	// MaxBufferedPerSub and MaxBufferedBytesPerSub bound the events a
	// subscription holds in memory (queued, held or in flight); past
	// either the engine stops fetching and JetStream keeps the backlog.
	// Defaults 4096 and 32 MiB.
	MaxBufferedPerSub      int
	MaxBufferedBytesPerSub int
	// MaxQueuePerDevice bounds one device's queue; more events of that
	// device are parked in JetStream (negatively acknowledged with a
	// delay) and taken again in order, so one failing device cannot fill
	// the subscription's buffer. Default 256.
	MaxQueuePerDevice int
	// MaxAckPending is the consumers' limit of unacknowledged messages:
	// what the engine holds plus what it parked. Default 16384.
	MaxAckPending int
	// AckWait of the consumers; the engine keeps the messages it holds
	// alive with InProgress every AckWait/3. After a crash, unacknowledged
	// messages come back within AckWait. Default 30 s.
	AckWait time.Duration
	// ParkDelay is how long JetStream keeps a parked message before
	// offering it again; default AckWait/2.
	ParkDelay time.Duration
	// ResyncInterval is how often the engine lists the store to pick up
	// subscriptions changed behind its back (Reload is immediate); default
	// 10 s, negative for never. A store that signals its changes
	// (events.ChangeWatcher) is listed after each change instead, and
	// every 30 × ResyncInterval in case a signal was lost.
	ResyncInterval time.Duration
	// MaxReplay bounds how many dead letters one Replay call re-enqueues;
	// default 10000.
	MaxReplay int

	// Fence, when set, is the term of a lead under which this engine
	// delivers (one node of a cluster delivers: handover.go). Once it is
	// done no send starts and the sends in flight are cancelled (their
	// outcome unknown: the events are handed back, not acknowledged), so
	// the engine has stopped sending before another node can take over;
	// Stop then hands back what it holds. A cluster ends it before the
	// lead's key can expire; Pause stops new sends earlier, so sends
	// normally finish before it.
	Fence context.Context
	// Pause, when set, is asked before each send: while it reports true
	// no send starts (sends in flight go on, nothing is handed back). A
	// cluster's lead between its fence and its end, which a renewal may
	// still revive: the engine keeps what it holds and delivered. Call
	// Resume when it turns false.
	Pause func() bool
	// Ledger, when set, keeps the acknowledgements of this engine's
	// deliveries that JetStream has not answered, past the engine's Stop,
	// for the next engine to learn through Handover (ledger.go). One per
	// node, shared by its engines.
	Ledger *Ledger
	// Handover, when set, is asked once as the engine starts for what the
	// previous engines (every node's Ledger) delivered and did not get
	// stored: offered again, those events are acknowledged, not sent.
	Handover func(ctx context.Context) ([]Unconfirmed, error)

	// ObserveLatency, if set, is called for every delivered event with the
	// time from the event's time to the endpoint's 2xx answer (for a
	// histogram). It runs on the subscription's goroutine: keep it cheap.
	ObserveLatency func(subscription string, t events.EventType, d time.Duration)
}

// EventGridSchedule is Event Grid's documented retry schedule
// (reference/iothub-facts.md §1.9): 10 s, 30 s, 1 min, 5 min, 10 min,
// 30 min, 1 h, 3 h, 6 h, then every 12 h.
var EventGridSchedule = []time.Duration{
	10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
}

// Defaults.
const (
	DefaultTimeout                = 30 * time.Second
	DefaultJitter                 = 0.1
	DefaultMaxInFlightPerSub      = 32
	DefaultMaxBufferedPerSub      = 4096
	DefaultMaxBufferedBytesPerSub = 32 << 20
	DefaultMaxQueuePerDevice      = 256
	DefaultMaxAckPending          = 16384
	DefaultAckWait                = 30 * time.Second
	DefaultResyncInterval         = 10 * time.Second
	DefaultMaxReplay              = 10000
)

var errMissing = errors.New("delivery: Options.JS and Options.Store are required")

func (o *Options) setDefaults() error {
	if o.JS == nil || o.Store == nil {
		return errMissing
	}
	if o.Clock == nil {
		o.Clock = SystemClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Origin == "" {
		o.Origin = events.DefaultOrigin
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if len(o.Schedule) == 0 {
		o.Schedule = EventGridSchedule
	}
	if o.Jitter == 0 {
		o.Jitter = DefaultJitter
	}
	if o.Jitter < 0 {
		o.Jitter = 0
	}
	if o.MaxInFlightPerSub <= 0 {
		o.MaxInFlightPerSub = DefaultMaxInFlightPerSub
	}
	if o.MaxBufferedPerSub <= 0 {
		o.MaxBufferedPerSub = DefaultMaxBufferedPerSub
	}
	if o.MaxBufferedBytesPerSub <= 0 {
		o.MaxBufferedBytesPerSub = DefaultMaxBufferedBytesPerSub
	}
	if o.MaxQueuePerDevice <= 0 {
		o.MaxQueuePerDevice = DefaultMaxQueuePerDevice
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = DefaultMaxAckPending
	}
	if o.MaxAckPending < o.MaxBufferedPerSub {
		o.MaxAckPending = o.MaxBufferedPerSub
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.ParkDelay <= 0 {
		o.ParkDelay = o.AckWait / 2
	}
	if o.ResyncInterval == 0 {
		o.ResyncInterval = DefaultResyncInterval
	}
	if o.MaxReplay <= 0 {
		o.MaxReplay = DefaultMaxReplay
	}
	var hook *webhook
	if o.Client == nil {
		hook = defaultWebhook(o.MaxInFlightPerSub, o.Endpoints, o.Origin)
		o.Client = hook.client
	} else {
		hook = &webhook{client: o.Client, origin: o.Origin}
	}
	dests := make(map[string]Destination, len(o.Destinations)+2)
	for k, d := range o.Destinations {
		dests[k] = d
	}
	if dests[events.EndpointWebHook] == nil {
		dests[events.EndpointWebHook] = hook
	}
	if dests[events.EndpointStream] == nil {
		dests[events.EndpointStream] = &streamDest{js: o.JS, replicas: o.Replicas}
	}
	o.Destinations = dests
	return nil
}
