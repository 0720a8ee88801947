package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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

// heartbeat writes the node's lease, and returns when it sent the write.
func (n *Node) heartbeat(ctx context.Context) (time.Time, error) {
	n.mu.Lock()
	devices := 0
	for _, h := range n.held {
		if !h.adopting {
			devices++
		}
	}
	n.mu.Unlock()
	start := time.Now()
	b, _ := json.Marshal(Lease{Node: n.o.Node, Boot: n.boot, Started: n.started.UTC(), Seen: start.UTC(), Devices: devices, LeaseMS: n.o.Lease.Milliseconds(), Info: n.o.Info})
	if _, err := n.nodes.Put(ctx, n.o.Node, b); err != nil {
		return start, fmt.Errorf("cluster: writing the lease of %s: %w", n.o.Node, err)
	}
	n.renewed(start)
	return start, nil
}

// loop campaigns for the shared jobs and runs those it leads (the lease
// is renewed beside it: renew, fence.go).
func (n *Node) loop(ctx context.Context) {
	defer n.wg.Done()
	every(ctx, n.beat(), func() {
		// Each job's key with its own time: a slow write of one must not
		// starve the others.
		var wg sync.WaitGroup
		wg.Add(len(Jobs))
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
	})
}

// loadIndex reads every owner record into the index and returns the
// watcher, which goes on with the changes after them (watchOwners): one
// watcher, so no change falls between the reading and the watching.
func (n *Node) loadIndex(ctx context.Context) (jetstream.KeyWatcher, error) {
	return loadAll(ctx, n.owners, n.note)
}

// loadBeats reads every node's lease into the heartbeats seen (dated
// now) and returns the watcher, which goes on with the changes.
func (n *Node) loadBeats(ctx context.Context) (jetstream.KeyWatcher, error) {
	return loadAll(ctx, n.nodes, n.noteBeat)
}

// loadAll applies kv's current values and returns its watcher.
func loadAll(ctx context.Context, kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry)) (jetstream.KeyWatcher, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: reading %s: %w", kv.Bucket(), err)
	}
	for e := range w.Updates() {
		if e == nil {
			return w, nil
		}
		apply(e)
	}
	_ = w.Stop()
	return nil, fmt.Errorf("cluster: the watch of %s closed early", kv.Bucket())
}

// note applies one owner record change to the index. A record of a
// device this node holds live, rewritten by another node (which took the
// session for lost while this node was cut off), ends the local session
// without recording it: the other node recorded its end.
//
// A delete of such a record, not this node's own release, is a takeover
// too: the adopter's write may have been compacted away by its delete
// before this node's feed read it (a lagging or reopened feed), and a
// session kept here would let the device be live elsewhere as well.
func (n *Node) note(e jetstream.KeyValueEntry) {
	n.mu.Lock()
	n.ownersRev = max(n.ownersRev, e.Revision())
	if e.Operation() != jetstream.KeyValuePut {
		delete(n.index, e.Key())
		var h *hold
		dev, err := deviceOf(e.Key())
		if err == nil {
			h = n.held[dev]
		}
		taken := h != nil && n.liveLocked(h) && e.Revision() > h.rev
		if taken {
			delete(n.held, dev)
		}
		n.mu.Unlock()
		if taken {
			n.endTaken(dev, h, "")
		}
		return
	}
	o, err := decodeOwner(e)
	if err != nil || o.Session == nil {
		n.index[e.Key()] = owned{}
		n.mu.Unlock()
		return
	}
	n.index[e.Key()] = owned{node: o.Node, boot: o.Boot, session: o.Session.ID}
	dev := o.Session.DeviceID
	h := n.held[dev]
	taken := h != nil && n.liveLocked(h) && e.Revision() > h.rev &&
		(o.Node != n.o.Node || o.Boot != n.boot || o.Session.ID != h.session)
	if taken {
		delete(n.held, dev)
	}
	n.mu.Unlock()
	if taken {
		n.endTaken(dev, h, o.Node)
	}
}

// liveLocked reports whether h is a live session's hold whose record is
// written (not an adoption, not being released by this node). n.mu held.
func (n *Node) liveLocked(h *hold) bool {
	return !h.adopting && !h.releasing && h.rev != 0
}

// endTaken ends the local session of a hold whose record another node
// took (by: that node, "" when its record was deleted), unrecorded: the
// other node recorded its end.
func (n *Node) endTaken(dev string, h *hold, by string) {
	n.log.Warn("another node took over a session held here (this node was cut off?); ending it here unrecorded", "device", dev, "by", by)
	h.finish()
	n.o.End(dev, h.session)
}

// deviceOf is the device id of a tether_owners key (Key's inverse).
func deviceOf(key string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	return string(b), err
}

// ownersPresent is the owners feed's present func: the index drops the
// keys deleted while no feed ran, and a live hold whose record is among
// them ends (note's delete case, its delete not seen). Only holds written
// at or before the last revision the feed delivered: a later claim's
// record may come after the feed's current values.
func (n *Node) ownersPresent(present map[string]bool) {
	keepPresent(&n.mu, n.index)(present)
	type gone struct {
		dev string
		h   *hold
	}
	var ended []gone
	n.mu.Lock()
	for dev, h := range n.held {
		if n.liveLocked(h) && h.rev <= n.ownersRev && !present[Key(dev)] {
			delete(n.held, dev)
			ended = append(ended, gone{dev, h})
		}
	}
	n.mu.Unlock()
	for _, g := range ended {
		n.endTaken(g.dev, g.h, "")
	}
}

// watchOwners keeps the index current with w's changes until ctx ends;
// should the feed end, a new one re-reads every record, and the records
// deleted meanwhile leave the index.
func (n *Node) watchOwners(ctx context.Context, w jetstream.KeyWatcher) {
	defer n.wg.Done()
	n.follow(ctx, n.owners, w, n.note, n.ownersPresent)
}

// watchNodes keeps the heartbeats seen current (suspect.go).
func (n *Node) watchNodes(ctx context.Context, w jetstream.KeyWatcher) {
	defer n.wg.Done()
	n.follow(ctx, n.nodes, w, n.noteBeat, keepPresent(&n.mu, n.beats))
}

// keepPresent returns a Follow present func that drops m's keys the
// reopened feed did not have (deleted while no feed ran), under mu.
func keepPresent[V any](mu *sync.Mutex, m map[string]V) func(map[string]bool) {
	return func(present map[string]bool) {
		mu.Lock()
		defer mu.Unlock()
		for k := range m {
			if !present[k] {
				delete(m, k)
			}
		}
	}
}

// follow is Follow on all of kv's keys.
func (n *Node) follow(ctx context.Context, kv jetstream.KeyValue, w jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry), present func(map[string]bool)) {
	Follow(ctx, n.log, kv.Bucket(), w, func(ctx context.Context) (jetstream.KeyWatcher, error) { return kv.WatchAll(ctx) }, apply, present)
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

// recordsOf returns the index keys held by node, each with the session
// its record names.
func (n *Node) recordsOf(node string) map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]string{}
	for k, o := range n.index {
		if o.node == node {
			out[k] = o.session
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

// reap records the sessions that runs of live nodes before their
// current one left open (node-lost): a node that restarted, whose
// previous run's records nobody adopted yet. The records of a silent node
// are the watchdog's (suspect.go): it probes the node and, once nothing
// serves its subject, every survivor adopts them.
//
// A node's live run is asked of the node itself (probe): the heartbeat
// seen here may be its previous run's, whose records would then be read
// as the live run's, or the live run's taken for lost.
func (n *Node) reap(ctx context.Context) {
	now := time.Now()
	nodes := map[string]bool{}
	n.mu.Lock()
	for _, o := range n.index {
		if o.node != "" && o.node != n.o.Node && !n.silentLocked(o.node, now) {
			nodes[o.node] = true
		}
	}
	n.mu.Unlock()
	for node := range nodes {
		boot, err := n.probe(ctx, node)
		if err != nil || boot == "" {
			// No answer, or nobody serves it: the watchdog's, not this
			// round's (an empty boot would make every run of it lost).
			continue
		}
		// boot is the node's live run: its records are not read (the index
		// says whose run each is), only those its previous runs left.
		n.reapKeys(ctx, n.keysOf(node, boot), func(o Owner) (presence.Reason, bool) {
			return presence.ReasonNodeLost, o.Node == node && o.Boot != boot
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
	_, _ = n.reapKeysOf(ctx, "", keys, lost)
}

// reapKeysOf is reapKeys, skipping (when node is not "") the keys the
// index no longer gives node when their turn comes: another survivor
// adopted them first. It returns how many records this node adopted,
// and whether the round stopped early (the bucket did not answer).
func (n *Node) reapKeysOf(ctx context.Context, node string, keys []string, lost func(Owner) (presence.Reason, bool)) (int, bool) {
	if len(keys) == 0 {
		return 0, false
	}
	var halted, skipped atomic.Bool
	var adopted atomic.Int64
	// Right after a node loss the owners bucket may still be electing a
	// Raft leader: the first write that finds no leader ends the round
	// (the next one starts a heartbeat later) instead of failing every key.
	// It stops handing out keys, not the adoptions under way: one cut off
	// between its record taken and its end stored or its record released
	// would leave a record naming this live node that no round reads again.
	halt := make(chan struct{})
	var stopped sync.Once
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(len(keys), reapWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				ok, err := n.reapKey(ctx, key, lost)
				if ok {
					adopted.Add(1)
				}
				if errors.Is(err, errSkipped) {
					skipped.Store(true)
					continue
				}
				if unanswered(err) {
					stopped.Do(func() {
						halted.Store(true)
						n.log.Warn("reaper: the owners bucket does not answer (electing a leader?); round stopped, retried on the next heartbeat", "err", err)
						close(halt)
					})
				}
			}
		}()
	}
	for _, k := range keys {
		if node != "" {
			n.mu.Lock()
			still := n.index[k].node == node
			n.mu.Unlock()
			if !still {
				continue
			}
		}
		select {
		case work <- k:
			continue
		case <-ctx.Done():
		case <-halt:
		}
		break
	}
	close(work)
	wg.Wait()
	return int(adopted.Load()), halted.Load() || skipped.Load()
}

// reapKey adopts key's record if lost says so; true if this node did.
func (n *Node) reapKey(ctx context.Context, key string, lost func(Owner) (presence.Reason, bool)) (bool, error) {
	gctx, cancel := context.WithTimeout(ctx, opWait)
	rev, cur, err := n.readOwner(gctx, key)
	cancel()
	if unanswered(err) && ctx.Err() == nil {
		// No leader yet (an election): this key is tried again in the
		// next round; the others go on.
		return false, errSkipped
	}
	if err != nil || cur.Node == "" {
		return false, err
	}
	reason, ok := lost(cur)
	if !ok {
		return false, nil
	}
	nrev, err := n.adoptAt(ctx, key, rev, cur, reason, opWait)
	if err != nil {
		if !unanswered(err) && ctx.Err() == nil {
			n.log.Warn("reaper: session not recorded ended", "device", cur.Session.DeviceID, "err", err)
		}
		return false, err
	}
	// Release the adopted record unless a claim got it meanwhile (the
	// delete is conditional on the revision this node wrote), without
	// reading it again first: a read fewer per lost device.
	if nrev != 0 {
		_ = n.owners.Delete(ctx, key, jetstream.LastRevision(nrev))
	}
	return nrev != 0, nil
}

// opWait bounds one read or write of an owner record in an adoption:
// a request a cut-off server still has interest in is never answered,
// and must end the round (unanswered) rather than hold it for minutes.
const opWait = probeTimeout

// errSkipped: a record's read went unanswered; the round goes on and
// reports itself stopped, so it runs again for the rest.
var errSkipped = errors.New("cluster: owner record not read in time")

// unanswered reports an error of a stream without a leader (or too slow
// to answer): no point in sending it more writes this round.
func unanswered(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

// readOwner reads key's record for an adoption or a recheck: at the
// stream's leader when it is replicated (getAtLeader), else the one
// replica's direct get.
func (n *Node) readOwner(ctx context.Context, key string) (uint64, Owner, error) {
	if n.o.Replicas > 1 {
		return n.getAtLeader(ctx, key)
	}
	return n.get(ctx, key)
}

// getAtLeader is get, read from the owners stream's Raft leader. A KV
// read is a direct get, which any replica may answer — after a partition
// one whose server is cut off too, whose routes the others keep until
// their pings time out: the read waits opWait for nothing (3.1 s for one
// record in a series at the 12 s lease). The leader is the one that takes
// the adoption's write anyway.
func (n *Node) getAtLeader(ctx context.Context, key string) (uint64, Owner, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + OwnersBucket + "." + key})
	msg, err := n.o.NC.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+OwnersBucket, req)
	if err != nil {
		return 0, Owner{}, fmt.Errorf("cluster: reading owner %s: %w", key, err)
	}
	var resp struct {
		Message *struct {
			Seq    uint64 `json:"seq"`
			Header []byte `json:"hdrs"`
			Data   []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, Owner{}, fmt.Errorf("cluster: reading owner %s: %w", key, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return 0, Owner{}, nil
	case resp.Error != nil:
		return 0, Owner{}, fmt.Errorf("cluster: reading owner %s: %w", key, resp.Error)
	case resp.Message == nil:
		return 0, Owner{}, fmt.Errorf("cluster: reading owner %s: empty answer", key)
	case bytes.Contains(resp.Message.Header, []byte("KV-Operation")):
		return 0, Owner{}, nil // deleted or purged: free
	}
	var o Owner
	if err := json.Unmarshal(resp.Message.Data, &o); err != nil || o.Session == nil {
		return resp.Message.Seq, Owner{}, nil // corrupt: as get, free
	}
	return resp.Message.Seq, o, nil
}
