package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/events/delivery"
)

// The delivery job's hand-over between nodes (docs/SCALING.md, "Delivery
// hand-over"): a node's delivery engines keep the events they delivered
// whose acknowledgements JetStream has not stored in the node's ledger
// (delivery.Ledger), and a node that takes the job asks every node for its
// ledger before its engine starts, over NATS alone (no Raft group needs a
// leader for it: the hand-over happens while they elect). A node answers
// once its own engine, if one was stopping, has stopped: its last
// deliveries are in the ledger by then.

// unconfirmedSubject is where node answers for its ledger.
func unconfirmedSubject(node string) string { return "tether.cluster.delivery.unconfirmed." + node }

// serveLedger answers the ledger requests of the other nodes on nc, page
// by page (clustering_ledgerpage.go), with what list returns, until the
// returned subscription is unsubscribed. stopped waits until no delivery
// engine of this node is stopping.
func serveLedger(nc *nats.Conn, node string, list func() []delivery.Unconfirmed, stopped func(), log *slog.Logger) (*nats.Subscription, error) {
	return nc.Subscribe(unconfirmedSubject(node), func(m *nats.Msg) {
		go func() {
			stopped()
			if err := answerLedgerPage(nc, m, list()); err != nil {
				log.Warn("delivery hand-over: ledger not sent", "err", err)
			}
		}()
	})
}

// askLedgers gathers what the ledgers of this node (own) and of peers
// list, asking the peers at once and each for up to wait. A peer nobody
// answers for (no route to it: its process is gone) is skipped at once;
// one that does not answer in time is named in the error, and the rest is
// returned (those events may be delivered again).
func askLedgers(ctx context.Context, nc *nats.Conn, own *delivery.Ledger, peers []string, wait time.Duration) ([]delivery.Unconfirmed, error) {
	out := own.Unconfirmed()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			var list []delivery.Unconfirmed
			var next []byte
			for first := true; first || next != nil; first = false {
				m, err := nc.RequestWithContext(rctx, unconfirmedSubject(p), next)
				if first && errors.Is(err, nats.ErrNoResponders) {
					return
				}
				var page []delivery.Unconfirmed
				if err == nil {
					page, next, err = nextLedgerPage(m)
				}
				if err != nil {
					mu.Lock()
					out = append(out, list...) // the pages it did answer
					errs = append(errs, fmt.Errorf("node %s: %w", p, err))
					mu.Unlock()
					return
				}
				list = append(list, page...)
			}
			mu.Lock()
			defer mu.Unlock()
			out = append(out, list...)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// deliveryHandover is the delivery engine's Options.Handover in a
// cluster: the ledgers of this node and of every node holding a lease.
func (a *App) deliveryHandover(ctx context.Context) ([]delivery.Unconfirmed, error) {
	self := a.cfg.Cluster.NodeName
	peers, err := a.clusterPeers(ctx)
	if err != nil {
		// No node known at all: only this node's ledger is read.
		return a.subs.ledger.Unconfirmed(), fmt.Errorf("listing the nodes to ask: %w", err)
	}
	var others []string
	for _, p := range peers {
		if p != self {
			others = append(others, p)
		}
	}
	return askLedgers(ctx, a.journal.NC, a.subs.ledger, others, a.handoverWait())
}

// handoverWait is how long a node that takes the delivery job waits for a
// peer's ledger: two leases. A peer whose lead ended answers once its
// engine stopped: its sends were cut off at its term's end (0.9 of a lease
// after its last renewal began), then its acknowledgements settle (≤ 3 s)
// and its Stop hands back what it held (bounded by half a lease). This
// node took the job no earlier than a lease after that renewal. A peer
// that cannot answer (cut off) stopped sending before this node took the
// job (delivery's handover.go): waiting for it only saves its ledger.
func (a *App) handoverWait() time.Duration { return 2 * a.lease() }

// serveDeliveryLedger answers for this node's ledger from here on, also
// while the node stops: a stopping node's engine hands its last
// unconfirmed deliveries to the ledger, and the node that takes the
// delivery job over asks for them. Stopping, the node waits (a few
// seconds at most) for the ledger's acknowledgements to be stored.
func (a *App) serveDeliveryLedger() error {
	sub, err := serveLedger(a.journal.NC, a.cfg.Cluster.NodeName, a.subs.ledger.Unconfirmed, a.deliveryStopped, a.log)
	if err != nil {
		return fmt.Errorf("delivery hand-over: %w", err)
	}
	pctx, stopPeers := context.WithCancel(context.Background())
	peersDone := make(chan struct{})
	go func() { defer close(peersDone); a.refreshPeers(pctx) }()
	// Registered before the engine's and the cluster node's stops, so it
	// runs after them.
	a.onStop(func(ctx context.Context) error {
		stopPeers()
		<-peersDone
		wctx, cancel := context.WithTimeout(ctx, ledgerStopWait)
		defer cancel()
		if a.subs.ledger.Wait(wctx) != nil {
			a.log.Warn("stopping with delivered events whose acknowledgements are not stored; the next delivering node may send them again", "left", len(a.subs.ledger.Unconfirmed()))
		}
		return sub.Unsubscribe()
	})
	return nil
}

// ledgerStopWait bounds a stopping node's wait for its ledger.
const ledgerStopWait = 5 * time.Second

// deliveryStopped waits until no delivery engine of this node is starting
// or stopping (onLead holds deliveryMu meanwhile).
func (a *App) deliveryStopped() {
	a.deliveryMu.Lock()
	//lint:ignore SA2001 an empty critical section: waiting for onLead
	a.deliveryMu.Unlock()
}
