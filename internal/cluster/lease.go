package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/presence"
)

// Shared jobs: one node of the cluster runs each (leader.go).
const (
	// JobReaper records the sessions of lost nodes as ended.
	JobReaper = "reaper"
	// JobAlerts sends the alert rules' notifications: every node
	// evaluates the rules over the whole cluster's metrics and log, one
	// notifies.
	JobAlerts = "alerts"
	// JobDelivery delivers the event subscriptions: one node's engine
	// runs, so each event goes out once and in order per device.
	JobDelivery = "delivery"
)

// Jobs are the shared jobs, each led by one node.
var Jobs = []string{JobReaper, JobAlerts, JobDelivery}

// heartbeat writes the node's lease.
func (n *Node) heartbeat(ctx context.Context) error {
	n.mu.Lock()
	devices := 0
	for _, h := range n.held {
		if !h.adopting {
			devices++
		}
	}
	n.mu.Unlock()
	b, _ := json.Marshal(Lease{Node: n.o.Node, Boot: n.boot, Started: n.started.UTC(), Seen: time.Now().UTC(), Devices: devices, Info: n.o.Info})
	if _, err := n.nodes.Put(ctx, n.o.Node, b); err != nil {
		return fmt.Errorf("cluster: writing the lease of %s: %w", n.o.Node, err)
	}
	return nil
}

// loop heartbeats, campaigns for the shared jobs and runs those it leads.
func (n *Node) loop(ctx context.Context) {
	defer n.wg.Done()
	tick := time.NewTicker(n.o.Lease / 5)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// The lease and each job's key side by side, each with its own
		// time: a slow write of one must not starve the others.
		var wg sync.WaitGroup
		wg.Add(1 + len(Jobs))
		go func() {
			defer wg.Done()
			octx, cancel := context.WithTimeout(ctx, n.o.Lease/2)
			defer cancel()
			if err := n.heartbeat(octx); err != nil {
				n.log.Warn("heartbeat failed", "err", err)
			}
		}()
		for _, job := range Jobs {
			go func() {
				defer wg.Done()
				octx, cancel := context.WithTimeout(ctx, n.o.Lease/2)
				defer cancel()
				n.campaign(octx, job)
			}()
		}
		wg.Wait()
		// The reaper runs beside the heartbeat: adopting a large node's
		// devices takes longer than a lease, and this node's own lease must
		// not lapse meanwhile.
		if n.Leads(JobReaper) && n.reaping.CompareAndSwap(false, true) {
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				defer n.reaping.Store(false)
				rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				n.reap(rctx)
			}()
		}
	}
}

// loadIndex reads every owner record into the index and returns the
// watcher, which goes on with the changes after them (watchOwners): one
// watcher, so no change falls between the reading and the watching.
func (n *Node) loadIndex(ctx context.Context) (jetstream.KeyWatcher, error) {
	w, err := n.owners.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: reading %s: %w", OwnersBucket, err)
	}
	for e := range w.Updates() {
		if e == nil {
			return w, nil
		}
		n.note(e)
	}
	_ = w.Stop()
	return nil, errors.New("cluster: owner watch closed early")
}

// note applies one owner record change to the index. A record of a
// device this node holds live, rewritten by another node (which took the
// session for lost while this node was cut off), ends the local session
// without recording it: the other node recorded its end.
func (n *Node) note(e jetstream.KeyValueEntry) {
	n.mu.Lock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(n.index, e.Key())
		n.mu.Unlock()
		return
	}
	o, err := decodeOwner(e)
	if err != nil || o.Session == nil {
		n.index[e.Key()] = owned{}
		n.mu.Unlock()
		return
	}
	n.index[e.Key()] = owned{node: o.Node, boot: o.Boot}
	dev := o.Session.DeviceID
	h := n.held[dev]
	taken := h != nil && !h.adopting && h.rev != 0 && e.Revision() > h.rev &&
		(o.Node != n.o.Node || o.Boot != n.boot || o.Session.ID != h.session)
	if taken {
		delete(n.held, dev)
	}
	n.mu.Unlock()
	if taken {
		n.log.Warn("another node took over a session held here (this node was cut off?); ending it here unrecorded", "device", dev, "by", o.Node)
		h.finish()
		n.o.End(dev, h.session)
	}
}

// watchOwners keeps the index current with w's changes until ctx ends;
// should the watcher end early, a new one re-reads every record first.
func (n *Node) watchOwners(ctx context.Context, w jetstream.KeyWatcher) {
	defer n.wg.Done()
	for {
	changes:
		for {
			select {
			case <-ctx.Done():
				_ = w.Stop()
				return
			case e, ok := <-w.Updates():
				if !ok {
					break changes
				}
				if e != nil {
					n.note(e)
				}
			}
		}
		_ = w.Stop()
		for {
			var err error
			if w, err = n.owners.WatchAll(context.Background()); err == nil {
				break
			}
			n.log.Warn("owner watch failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// Owners counts the devices each node holds, from the index.
func (n *Node) Owners() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]int{}
	for _, o := range n.index {
		if o.node != "" {
			out[o.node]++
		}
	}
	return out
}

// keysOf returns the index keys held by node, except those of its run
// boot (when not empty): a live node's current devices are not read.
func (n *Node) keysOf(node, boot string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for k, o := range n.index {
		if o.node == node && (boot == "" || o.boot != boot) {
			out = append(out, k)
		}
	}
	return out
}

// reapOwn records the sessions this node's previous run left open
// (hub-restart), before the node accepts devices.
func (n *Node) reapOwn(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n.reapKeys(ctx, n.keysOf(n.o.Node, n.boot), func(o Owner) (presence.Reason, bool) {
		return presence.ReasonHubRestart, o.Node == n.o.Node && o.Boot != n.boot
	})
}

// reap records the sessions of nodes whose lease expired, or that
// restarted since (node-lost).
func (n *Node) reap(ctx context.Context) {
	byNode := map[string]bool{}
	n.mu.Lock()
	for _, o := range n.index {
		if o.node != "" && o.node != n.o.Node {
			byNode[o.node] = true
		}
	}
	n.mu.Unlock()
	for node := range byNode {
		l, ok, err := n.lease(ctx, node)
		if err != nil {
			n.log.Warn("reaper: lease unreadable", "node", node, "err", err)
			continue
		}
		// boot is the node's live run: its records are not read (the index
		// says whose run each is), only a lost node's, or those its
		// previous runs left.
		boot := l.Boot
		if !ok {
			// The lease lapsed. That alone does not prove the node gone:
			// while the leases' bucket elects a Raft leader nobody can
			// renew one. Gone is when NATS has no route to its subject.
			if boot, err = n.probe(ctx, node); err != nil {
				n.log.Warn("reaper: node's lease lapsed but it could not be probed; not reaped this round", "node", node, "err", err)
				continue
			}
			if boot != "" {
				n.log.Warn("reaper: node's lease lapsed but it answers; its devices stay its own", "node", node)
			}
		}
		n.reapKeys(ctx, n.keysOf(node, boot), func(o Owner) (presence.Reason, bool) {
			return presence.ReasonNodeLost, o.Node == node && (boot == "" || o.Boot != boot)
		})
	}
}

// reapWorkers is how many lost records are adopted at once: each is
// three replicated writes (the record taken, the session's end, the record
// released), bound by round trips rather than CPU.
const reapWorkers = 128

// reapKeys adopts, in parallel, the records among keys that lost says
// are lost, and deletes them once their ends are stored.
func (n *Node) reapKeys(ctx context.Context, keys []string, lost func(Owner) (presence.Reason, bool)) {
	if len(keys) == 0 {
		return
	}
	// Right after a node loss the owners bucket may still be electing a
	// Raft leader: the first write that finds no leader ends the round
	// (the next one starts a heartbeat later) instead of failing every key.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stopped sync.Once
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(len(keys), reapWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				if err := n.reapKey(ctx, key, lost); unanswered(err) {
					stopped.Do(func() {
						n.log.Warn("reaper: the owners bucket does not answer (electing a leader?); round stopped, retried on the next heartbeat", "err", err)
						cancel()
					})
				}
			}
		}()
	}
	for _, k := range keys {
		select {
		case work <- k:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
}

func (n *Node) reapKey(ctx context.Context, key string, lost func(Owner) (presence.Reason, bool)) error {
	rev, cur, err := n.get(ctx, key)
	if err != nil || cur.Node == "" {
		return err
	}
	reason, ok := lost(cur)
	if !ok {
		return nil
	}
	nrev, err := n.adoptAt(ctx, key, rev, cur, reason)
	if err != nil {
		if !unanswered(err) && ctx.Err() == nil {
			n.log.Warn("reaper: session not recorded ended", "device", cur.Session.DeviceID, "err", err)
		}
		return err
	}
	// Release the adopted record unless a claim got it meanwhile (the
	// delete is conditional on the revision this node wrote), without
	// reading it again first: a read fewer per lost device.
	if nrev != 0 {
		_ = n.owners.Delete(ctx, key, jetstream.LastRevision(nrev))
	}
	return nil
}

// unanswered reports an error of a stream without a leader (or too slow
// to answer): no point in sending it more writes this round.
func unanswered(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}
