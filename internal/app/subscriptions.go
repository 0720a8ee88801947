package app

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/events/delivery"
	"github.com/tether-hub/tether/internal/events/kvstore"
)

// subscriptionService is api.SubscriptionService on the subscription
// store, the endpoint handshake and the delivery engine: the store holds
// definitions and state, the engine delivers what the store says (and
// checks destinations other than webhooks).
type subscriptionService struct {
	store events.SubscriptionStore
	hs    *events.Handshaker
	// cur is the delivery engine: started on a single hub; in a cluster,
	// started only on the node leading the delivery job, a stopped or
	// unstarted one elsewhere (clustering.go).
	cur atomic.Pointer[delivery.Engine]
	// newEngine builds an engine; fence, when set, is the lead's term it
	// delivers under (delivery.Options.Fence).
	newEngine func(fence context.Context) (*delivery.Engine, error)
	clustered bool
	nc        *nats.Conn // a cluster's, to reach the delivering node
	now       func() time.Time
	// ledger is a cluster node's record of what its engines delivered
	// and JetStream has not yet stored as delivered (nil when alone;
	// clustering_handover.go).
	ledger *delivery.Ledger
	// peers are the nodes the ledgers are asked of, kept in memory for
	// the hand-overs (clustering_peers.go).
	peers peerBook
	// policy is what the API accepts: which destination kinds this hub
	// serves.
	policy events.ValidateOptions
}

var _ api.SubscriptionService = (*subscriptionService)(nil)

// startEvents opens the subscription store and starts the delivery
// engine (after the journal, before the broker produces events).
func (a *App) startEvents(ctx context.Context) error {
	var store *kvstore.Store
	err := a.journal.UntilReady(ctx, func(ctx context.Context) (err error) {
		store, err = kvstore.New(ctx, a.journal.JS, kvstore.Options{Replicas: a.journal.Replicas})
		return err
	})
	if err != nil {
		return fmt.Errorf("subscriptions: %w", err)
	}
	var dead *delivery.JetStreamDeadLetters
	err = a.journal.UntilReady(ctx, func(ctx context.Context) (err error) {
		dead, err = delivery.OpenDeadLetters(ctx, a.journal.JS, delivery.DeadLetterOptions{Replicas: a.journal.Replicas})
		return err
	})
	if err != nil {
		return fmt.Errorf("subscriptions: %w", err)
	}
	res := events.Resource{}
	dests, policy, err := a.eventDestinations()
	if err != nil {
		return err
	}
	endpoints := &policy.Endpoints
	var pause func() bool
	var ledger *delivery.Ledger
	var handover func(context.Context) ([]delivery.Unconfirmed, error)
	if a.cfg.Cluster.On() {
		pause = a.deliveryPaused
		ledger, handover = delivery.NewLedger(), a.deliveryHandover
	}
	newEngine := func(fence context.Context) (*delivery.Engine, error) {
		return delivery.New(delivery.Options{
			JS: a.journal.JS, Store: store, Resource: res, HubHost: a.cfg.HubName, Endpoints: endpoints, Fence: fence, Pause: pause,
			Ledger: ledger, Handover: handover,
			Logger: a.log.With("component", "delivery"), Origin: a.cfg.HubName,
			ObserveLatency: a.observeDelivery, Replicas: a.journal.Replicas, DeadLetters: dead, Destinations: dests, Schedule: a.cfg.EventRetrySchedule,
		})
	}
	engine, err := newEngine(nil)
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	// A cluster node starts its engine when it takes the delivery job
	// (clustering.go): one node delivers, so each event goes out once and
	// in order per device.
	if !a.cfg.Cluster.On() {
		if err := engine.Start(ctx); err != nil {
			return fmt.Errorf("delivery: %w", err)
		}
	}
	a.subs = &subscriptionService{
		store: store, newEngine: newEngine, clustered: a.cfg.Cluster.On(), nc: a.journal.NC, now: time.Now, policy: policy, ledger: ledger,
		hs: &events.Handshaker{
			Endpoints: endpoints,
			Origin:    a.cfg.HubName,
			Topic:     res.ID(a.cfg.HubName),
			// Filled once the HTTPS port is bound (startHTTPS).
		},
	}
	a.subs.cur.Store(engine)
	if ledger != nil {
		if err := a.serveDeliveryLedger(); err != nil {
			return err
		}
	}
	a.onStop(func(ctx context.Context) error { return a.subs.engine().Stop(ctx) })
	return nil
}

// engine is the current delivery engine.
func (s *subscriptionService) engine() *delivery.Engine { return s.cur.Load() }

// reload applies a stored change to the engine. A cluster node that does
// not deliver leaves it to the one that does (its engine lists the store
// every delivery.DefaultResyncInterval).
func (s *subscriptionService) reload(ctx context.Context, name string) error {
	err := s.engine().Reload(ctx, name)
	if !s.clustered || !(errors.Is(err, delivery.ErrNotStarted) || errors.Is(err, delivery.ErrStopped)) {
		return err
	}
	// Another node delivers: it applies the change and answers once the
	// subscription's consumers exist.
	m, err := s.nc.RequestWithContext(ctx, reloadSubject, []byte(name))
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil // no node delivers right now; the next one lists the store when it starts
	case err != nil:
		return fmt.Errorf("delivery: the delivering node did not apply the change: %w", err)
	case string(m.Data) != "ok":
		return fmt.Errorf("delivery: %s", m.Data)
	}
	return nil
}

// eventDestinations are the destination kinds beyond WebHook and Stream
// this hub serves (Command with --event-command-dir, Email with
// --smtp-addr), and the API policy that refuses the others with why.
func (a *App) eventDestinations() (map[string]delivery.Destination, events.ValidateOptions, error) {
	dests := map[string]delivery.Destination{}
	policy := events.ValidateOptions{Unavailable: map[string]string{},
		Endpoints: events.EndpointPolicy{AllowLoopback: a.cfg.allowLoopbackEndpoints(), Own: a.ownListeners}}
	if dir := a.cfg.EventCommandDir; dir != "" {
		d, err := delivery.NewCommandDestination(dir)
		if err != nil {
			return nil, policy, fmt.Errorf("event-command-dir: %w", err)
		}
		dests[events.EndpointCommand] = d
	} else {
		policy.Unavailable[events.EndpointCommand] = "it runs no commands; start it with --event-command-dir DIR (the programs subscriptions may run)"
	}
	if a.cfg.SMTP.Addr != "" {
		dests[events.EndpointEmail] = delivery.NewEmailDestination(a.cfg.SMTP)
	} else {
		policy.Unavailable[events.EndpointEmail] = "it has no SMTP server; start it with --smtp-addr and --smtp-from (the password in TETHER_SMTP_PASSWORD)"
	}
	return dests, policy, nil
}

// handshake proves the destination of sub: the endpoint handshake of a
// webhook, the engine's check of any other kind. The outcome is stored
// as the subscription's state either way.
func (s *subscriptionService) handshake(ctx context.Context, sub events.Subscription, rev uint64) (events.Subscription, uint64, error) {
	var checked events.Subscription
	if sub.Destination.Kind() == events.EndpointWebHook {
		checked, _ = s.hs.Handshake(ctx, sub) // a failure is a state, stored
	} else {
		checked = s.engine().Check(ctx, sub)
	}
	rev, err := s.store.Update(ctx, checked, rev)
	if err != nil {
		return sub, 0, err
	}
	return checked, rev, s.reload(ctx, sub.Name)
}

func (s *subscriptionService) Create(ctx context.Context, sub events.Subscription) (events.Subscription, uint64, error) {
	sub.ProvisioningState = events.AwaitingManualAction
	rev, err := s.store.Create(ctx, sub)
	if err != nil {
		return sub, 0, err
	}
	// Start the consumer now: events from the moment of creation are held
	// while the endpoint is being validated, not skipped.
	if err := s.reload(ctx, sub.Name); err != nil {
		return sub, 0, err
	}
	return s.handshake(ctx, sub, rev)
}

func (s *subscriptionService) Update(ctx context.Context, sub events.Subscription, expect uint64) (events.Subscription, uint64, error) {
	cur, rev, err := s.store.Get(ctx, sub.Name)
	if err != nil {
		return sub, 0, err
	}
	if expect != 0 && expect != rev {
		return sub, 0, events.ErrConflict
	}
	sub.ProvisioningState, sub.Validation = cur.ProvisioningState, cur.Validation
	again := cur.ProvisioningState == events.Failed || sub.NeedsHandshake()
	rev, err = s.store.Update(ctx, sub, rev)
	if err != nil {
		return sub, 0, err
	}
	if again {
		return s.handshake(ctx, sub, rev)
	}
	return sub, rev, s.reload(ctx, sub.Name)
}

func (s *subscriptionService) Delete(ctx context.Context, name string, expect uint64) error {
	if err := s.store.Delete(ctx, name, expect); err != nil {
		return err
	}
	return s.reload(ctx, name)
}

func (s *subscriptionService) Get(ctx context.Context, name string) (events.Subscription, uint64, error) {
	return s.store.Get(ctx, name)
}

func (s *subscriptionService) List(ctx context.Context) ([]events.Subscription, error) {
	return s.store.List(ctx)
}

func (s *subscriptionService) ConfirmValidation(ctx context.Context, name, code string) (events.Subscription, error) {
	cur, rev, err := s.store.Get(ctx, name)
	if err != nil {
		return cur, err
	}
	ok, err := events.ConfirmValidation(cur, code, s.now())
	if err != nil {
		return cur, err
	}
	if _, err := s.store.Update(ctx, ok, rev); err != nil {
		return cur, err
	}
	return ok, s.reload(ctx, name)
}

func (s *subscriptionService) DeadLetters(ctx context.Context, name string, limit int) ([]events.DeadLetter, error) {
	recs, err := s.engine().DeadLetters(ctx, name, limit)
	if err != nil {
		return nil, err
	}
	out := make([]events.DeadLetter, len(recs))
	for i, r := range recs {
		out[i] = r.DeadLetter
	}
	return out, nil
}

func (s *subscriptionService) Replay(ctx context.Context, name string, r api.ReplayRequest) (api.ReplayResult, error) {
	res := api.ReplayResult{NotFound: []string{}}
	var ids []string
	if !r.All {
		if len(r.IDs) == 0 {
			return res, errors.New("nothing to replay: give ids or all")
		}
		recs, err := s.engine().DeadLetters(ctx, name, 0)
		if err != nil {
			return res, err
		}
		present := map[string]bool{}
		for _, rec := range recs {
			present[rec.Event.ID] = true
		}
		for _, id := range r.IDs {
			if present[id] {
				ids = append(ids, id)
			} else {
				res.NotFound = append(res.NotFound, id)
			}
		}
		if len(ids) == 0 {
			return res, nil
		}
	}
	n, err := s.engine().Replay(ctx, name, ids...)
	res.Replayed = n
	return res, err
}

func (s *subscriptionService) Status(ctx context.Context, name string, deliveries int) (api.SubscriptionStatus, error) {
	sub, _, err := s.store.Get(ctx, name)
	if err != nil {
		return api.SubscriptionStatus{}, err
	}
	st := s.engine().Status(sub.Name)
	if !st.Running {
		st.EndpointType, st.Target = sub.Destination.Kind(), sub.Destination.Target()
	}
	return api.SubscriptionStatus{
		Name: sub.Name, ProvisioningState: sub.ProvisioningState, Delivery: st,
		Deliveries: s.engine().Deliveries(sub.Name, deliveries),
	}, nil
}
