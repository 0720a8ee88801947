package app

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/cluster"
)

// The nodes a node taking the delivery job asks for their ledgers
// (clustering_handover.go). Hand-overs happen while the replicated buckets
// elect Raft leaders (a node lost, a rolling restart), exactly when listing
// tether_nodes may not be answered; so the names are kept in memory,
// refreshed from the node leases every fifth of a lease while the bucket
// answers, and a hand-over reads them from memory (adding a listing only
// if one is answered within a quarter lease).

// peerBook remembers the nodes seen holding a lease: a name stays for
// peerKeep after the last successful listing that showed it (a listing
// that fails forgets nothing), long enough to cover a lead that was cut
// off, whose lease expired before the hand-over it causes.
type peerBook struct {
	mu     sync.Mutex
	seen   map[string]time.Time // node → the last listing that showed it
	lastOK time.Time            // the last successful listing
}

// peerKeep is how many leases a name outlives the last listing showing
// it: the lead's term ends within a lease of its last renewal, the next
// node takes the job a lease after that at the earliest, and its own
// renewal rounds add one more.
const peerKeep = 3

// note records a successful listing of names at now.
func (b *peerBook) note(names []string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		b.seen = map[string]time.Time{}
	}
	for _, n := range names {
		b.seen[n] = now
	}
	b.lastOK = now
}

// names lists the nodes seen within keep of the last successful listing
// (forgetting the others).
func (b *peerBook) names(keep time.Duration) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for n, at := range b.seen {
		if b.lastOK.Sub(at) > keep {
			delete(b.seen, n)
		}
	}
	return slices.Sorted(maps.Keys(b.seen))
}

// listPeers lists the nodes holding a lease: through the cluster node once
// it has joined, the bucket itself before (the delivery job may be taken
// while cluster.Open runs).
func (a *App) listPeers(ctx context.Context) ([]string, error) {
	if n := a.leadNode.Load(); n != nil {
		live, err := n.Live(ctx)
		return slices.Sorted(maps.Keys(live)), err
	}
	kv, err := a.journal.JS.KeyValue(ctx, cluster.NodesBucket)
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	return names, nil
}

// refreshPeers keeps the book (subscriptionService.peers) current every fifth of a lease until ctx
// ends.
func (a *App) refreshPeers(ctx context.Context) {
	lease := a.lease()
	t := time.NewTicker(lease / 5)
	defer t.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, lease/2)
		names, err := a.listPeers(lctx)
		cancel()
		if err == nil {
			a.subs.peers.note(names, time.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clusterPeers names the nodes to ask for their ledgers: those the book
// remembers, and those a listing answered within a quarter lease shows (a
// node that joined since the last refresh). It fails only when it knows
// of no node at all.
func (a *App) clusterPeers(ctx context.Context) ([]string, error) {
	lctx, cancel := context.WithTimeout(ctx, a.lease()/4)
	names, err := a.listPeers(lctx)
	cancel()
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		names, err = nil, nil
	}
	if err == nil {
		a.subs.peers.note(names, time.Now())
	}
	known := a.subs.peers.names(peerKeep * a.lease())
	if len(known) == 0 && err != nil {
		return nil, err
	}
	return known, nil
}

// lease is the cluster's lease.
func (a *App) lease() time.Duration {
	if l := a.cfg.Cluster.Lease; l > 0 {
		return l
	}
	return cluster.DefaultLease
}
