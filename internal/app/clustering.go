package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/broker"
	"github.com/tether-hub/tether/internal/cluster"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
	regkv "github.com/tether-hub/tether/internal/registry/kvstore"
)

// ClusterConfig is a node's part in a cluster (Config.Cluster).
type ClusterConfig struct {
	// NodeName names this node, unique in the cluster and the same at
	// every start; empty: not clustered.
	NodeName string
	// Name, Listen and Peers form the embedded NATS servers' JetStream
	// cluster (journal.ClusterOptions); unused with an external NATS.
	Name   string
	Listen string
	Peers  []string
	// Secret authenticates the routes between the embedded NATS servers
	// (journal.ClusterOptions.Secret); the same on every node.
	Secret string
	// Replicas of streams and buckets on an external NATS cluster
	// (default 3 when clustered there, 1 otherwise).
	Replicas int
	// Lease is how long a silent node keeps its devices (default
	// cluster.DefaultLease).
	Lease time.Duration
}

// On reports whether the hub is a cluster node.
func (c ClusterConfig) On() bool { return c.NodeName != "" }

func (c ClusterConfig) validate(natsURL string) []error {
	var errs []error
	formed := c.Name != "" || c.Listen != "" || len(c.Peers) > 0
	switch {
	case !formed && !c.On():
	case formed && natsURL != "":
		errs = append(errs, errors.New("--cluster-name/--cluster-listen/--cluster-peers form a cluster of embedded NATS servers; with --nats-url the external NATS cluster is shared instead: pass one or the other"))
	case !c.On():
		errs = append(errs, errors.New("a cluster node needs --node-name (unique in the cluster, the same at every start)"))
	case natsURL == "":
		opts := c.journalOptions()
		if err := opts.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Lease < 0 || (c.Lease > 0 && c.Lease < time.Second) {
		errs = append(errs, errors.New("--cluster-lease must be at least 1s"))
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, errors.New("--replicas must be 1…5"))
	}
	return errs
}

func (c ClusterConfig) journalOptions() *journal.ClusterOptions {
	return &journal.ClusterOptions{Name: c.Name, NodeName: c.NodeName, Listen: c.Listen, Peers: c.Peers, Secret: c.Secret}
}

// journalOptions adds the cluster's settings to the journal's.
func (a *App) clusterJournal(o *journal.Options) {
	c := a.cfg.Cluster
	switch {
	case a.cfg.NATSURL != "":
		o.Replicas = c.Replicas
		if o.Replicas == 0 && c.On() {
			o.Replicas = 3
		}
	case c.On():
		o.Cluster = c.journalOptions()
		o.Replicas = c.Replicas
	}
}

// startCluster joins the cluster (before the broker accepts devices):
// sessions the node's previous run left open are recorded ended, and the
// node answers takeovers and heartbeats from here on.
func (a *App) startCluster(ctx context.Context, epoch uint64) error {
	c := a.cfg.Cluster
	n, err := cluster.Open(ctx, cluster.Options{
		JS: a.journal.JS, NC: a.journal.NC, Node: c.NodeName, Replicas: a.journal.Replicas, Lease: c.Lease, Epoch: epoch,
		End: func(deviceID, sessionID string) bool {
			if b := a.broker; b != nil {
				return b.EndSession(deviceID, sessionID)
			}
			return false
		},
		Adopted: a.presence.Adopted,
		Forget:  a.presence.Forget,
		Info:    map[string]string{},
		Retry:   a.journal.UntilReady,
		OnLead:  a.onLead,
		Logger:  a.log,
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	a.cluster = n
	a.leadNode.Store(n)
	if err := a.serveRoutes(); err != nil {
		return err
	}
	// Registered before the broker's stop, so it runs after it: the
	// sessions the broker ends release their records first.
	a.onStop(n.Close)
	return nil
}

// Cluster is the node's cluster membership (nil when alone).
func (a *App) Cluster() *cluster.Node { return a.cluster }

// claims is the broker's Claims: the cluster node, or none.
func (a *App) claims() broker.Claims {
	if a.cluster == nil {
		return nil
	}
	return a.cluster
}

// workspaceDurable names the log store's journal consumers: every node of
// a cluster keeps its own log store from the whole journal, so each needs
// its own position (docs/ARCHITECTURE.md, "Cluster").
func (a *App) workspaceDurable() string {
	if a.cfg.Cluster.On() {
		return "connlog-" + a.cfg.Cluster.NodeName
	}
	return ""
}

// watchRegistry keeps this node's registry cache in step with the writes
// of the other nodes: devices (a device disabled or deleted elsewhere is
// disconnected here too) and twins. Its own writes come back as well;
// applying them changes nothing.
func (a *App) watchRegistry() error {
	wctx, cancel := context.WithCancel(context.Background())
	var done []chan struct{}
	watch := func(kv jetstream.KeyValue, apply func(id string, e jetstream.KeyValueEntry) error) error {
		w, err := kv.WatchAll(wctx, jetstream.UpdatesOnly())
		if err != nil {
			return err
		}
		ch := make(chan struct{})
		done = append(done, ch)
		go func() {
			defer close(ch)
			for e := range w.Updates() {
				if e == nil {
					continue
				}
				raw, err := base64.RawURLEncoding.DecodeString(e.Key())
				if err != nil {
					continue
				}
				if err := apply(string(raw), e); err != nil {
					a.log.Warn("registry cache not updated after another node's write", "bucket", kv.Bucket(), "id", string(raw), "err", err)
				}
			}
		}()
		return nil
	}
	err := watch(a.journal.Devices, func(id string, e jetstream.KeyValueEntry) error {
		if e.Operation() != jetstream.KeyValuePut {
			a.registry.Apply(id, nil, e.Revision())
			if a.broker != nil {
				a.broker.Kick(id, presence.ReasonDeleted)
			}
			return nil
		}
		d, err := regkv.DecodeDevice(e)
		if err != nil {
			return err
		}
		a.registry.Apply(id, &d, e.Revision())
		if d.Status == registry.Disabled && a.broker != nil {
			a.broker.Kick(id, presence.ReasonDisabled)
		}
		return nil
	})
	if err == nil {
		err = watch(a.journal.Twins, func(id string, e jetstream.KeyValueEntry) error {
			if e.Operation() != jetstream.KeyValuePut {
				return nil // the device's deletion drops it
			}
			return a.registry.ApplyTwin(id, e.Value(), e.Revision())
		})
	}
	a.onStop(func(ctx context.Context) error {
		cancel()
		for _, ch := range done {
			select {
			case <-ch:
			case <-ctx.Done():
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: watching the registry: %w", err)
	}
	return nil
}

// clusterSource is the API's cluster status (nil when alone: a nil
// *cluster.Node must not become a non-nil interface).
func (a *App) clusterSource() api.ClusterSource {
	if a.cluster == nil {
		return nil
	}
	return a.cluster
}

// onLead starts a delivery engine when this node takes the delivery job
// and stops it when the job ends. The engine delivers under the lead's
// term (term: cancelled 0.9 of a lease after the last renewal began,
// before the key can expire and another node take the job), and its
// sends run under the term too: one still in flight when it ends is
// cancelled (delivery's handover.go), so two nodes never deliver at once,
// even when this node is cut off; its Stop, bounded by ctx,
// hands back what it holds and confirms its acknowledgements, so the
// next leader resumes after the last delivered event. A stopped engine
// cannot start again: each term gets a new one. Off the heartbeat:
// starting creates the subscriptions' consumers.
func (a *App) onLead(ctx context.Context, job string, leading bool) {
	if job != cluster.JobDelivery || a.subs == nil {
		return
	}
	a.deliveryMu.Lock()
	defer a.deliveryMu.Unlock()
	if leading && a.deliveryTerm != nil && a.deliveryTerm == ctx {
		// The same term, revived by a renewal after its fence: the engine
		// paused meanwhile (deliveryPaused) and goes on.
		a.subs.engine().Resume()
		return
	}
	if leading {
		// Right after a node loss or during a rolling restart the
		// replicated buckets may not answer for a while (a Raft leader
		// election): the lead is kept and the start retried for as long as
		// the term lasts, or nobody would deliver until the next hand-over.
		if !retryWhileLeading(ctx, a.startDelivery, deliveryRetryWait, a.log) {
			return
		}
		// The other nodes' API writes of subscriptions come here to take
		// effect at once (subscriptionService.reload).
		sub, err := a.journal.NC.Subscribe(reloadSubject, func(m *nats.Msg) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				reply := "ok"
				if err := a.subs.engine().Reload(ctx, string(m.Data)); err != nil {
					reply = err.Error()
				}
				_ = m.Respond([]byte(reply))
			}()
		})
		if err != nil {
			a.log.Error("delivery reload subject", "err", err)
		}
		a.reloadSub = sub
		a.deliveryTerm = ctx
		return
	}
	a.deliveryTerm = nil
	if a.reloadSub != nil {
		_ = a.reloadSub.Unsubscribe()
		a.reloadSub = nil
	}
	if err := a.subs.engine().Stop(ctx); err != nil {
		a.log.Warn("delivery engine stop", "err", err)
	}
}

// deliveryPaused is the delivery engine's Options.Pause in a cluster:
// between its lead's fence and its end (Leads false) no POST starts, so
// a POST in flight has until the term's end (0.3 of a lease) to finish
// before it is cancelled with its outcome unknown; a renewal that revives the term resumes
// the same engine (onLead), with what it delivered and has not yet seen
// acknowledged.
func (a *App) deliveryPaused() bool {
	n := a.leadNode.Load()
	return n != nil && !n.Leads(cluster.JobDelivery)
}

// deliveryRetryWait is the wait before the attempt after the given one
// to start a delivery engine: 1 s, 2 s, … at most 10 s.
func deliveryRetryWait(attempt int) time.Duration {
	return min(time.Duration(attempt)*time.Second, 10*time.Second)
}

// retryWhileLeading runs start until it succeeds or the lead's term ends,
// waiting wait(attempt) after each failed attempt; it reports whether
// start succeeded (false: the term ended first, nothing started).
func retryWhileLeading(term context.Context, start func(context.Context) error, wait func(int) time.Duration, log *slog.Logger) bool {
	for attempt := 1; ; attempt++ {
		if term.Err() != nil {
			return false
		}
		err := start(term)
		if err == nil {
			return true
		}
		d := wait(attempt)
		log.Error("delivery engine not started on taking the delivery job; retrying while this node leads", "err", err, "attempt", attempt, "retryIn", d)
		t := time.NewTimer(d)
		select {
		case <-term.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// startDelivery builds and starts the delivery engine of one term.
func (a *App) startDelivery(term context.Context) error {
	e, err := a.subs.newEngine(term)
	if err != nil {
		return fmt.Errorf("building the engine: %w", err)
	}
	sctx, cancel := context.WithTimeout(term, 30*time.Second)
	defer cancel()
	if err := e.Start(sctx); err != nil {
		_ = e.Stop(sctx)
		return err
	}
	a.subs.cur.Store(e)
	return nil
}

// reloadSubject carries a subscription's name from a node's API to the
// node that delivers.
const reloadSubject = "tether.cluster.delivery.reload"
