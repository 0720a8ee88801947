package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/presence"
)

// Node loss within the lease. Waiting for a dead node's lease to lapse
// (and then for the reaper job, which may have been the dead node's, to
// move) puts node-lost a lease and a reaper round after the kill. So
// every node follows the others' heartbeats (the tether_nodes change
// feed), each dated by this node's clock on arrival, so clocks need not
// agree. A node that holds records and was not heard for suspectBeats
// heartbeats is suspected and probed over NATS alone (probe). No
// responders means no server of the cluster has a route to its subject:
// its process is gone (kill -9 closes its sockets, and its server's
// routes, at once). Its records are then adopted as node-lost by every
// surviving node together, each starting at its own share of them (the
// compare-and-set on each record lets exactly one node record an end),
// without waiting for its lease or for a reaper leader.
//
// A node that answers the probe keeps its devices, and so does one whose
// probe goes unanswered, for a while: a partitioned node's routes stay
// up in the other servers' view until their pings time out (minutes by
// default), so its requests time out rather than find no responders.
// Such a node fences itself and is adopted once it has been silent for
// most of the lease (fence.go).

// suspectBeats is how many heartbeats a node may miss before it is
// probed: one late write (a loaded machine, a slow Raft round) is not
// enough; a probe is cheap and decides, so more would only delay.
const suspectBeats = 2

// suspectRetry is the pause before a gone node's records are tried again
// after the owners bucket or the journal did not answer.
const suspectRetry = 100 * time.Millisecond

// beatSeen is a node's last heartbeat as this node saw it.
type beatSeen struct {
	boot string
	rev  uint64    // the lease's revision: a reopened feed's same write is not a new beat
	at   time.Time // this node's clock when the write arrived
	// lease is the node's own (Lease.LeaseMS; 0 from a node that does
	// not say).
	lease time.Duration
}

// noAnswer is a first probe of a node that found no responders.
type noAnswer struct {
	at         time.Time
	reconnects uint64 // this node's reconnects to NATS by then
}

// A node that reconnects to NATS (an external server restarting: the
// client waits ReconnectWait plus jitter between attempts) sees the
// others' heartbeats stale by the length of its own outage, and may
// probe a node that has not reconnected yet: no responders, though the
// node is alive. So the silence clocks start again at this node's own
// reconnect (redateOnReconnect), and a node is taken for gone only after
// two probes found no responders, at least confirmGap apart, with no
// reconnect of this node between them: by then a live node reconnected.

// confirmGap is how long after a first unanswered probe a second one
// must also find no responders: the client's longest pause between
// reconnect attempts (ReconnectWait plus the larger jitter).
func (n *Node) confirmGap() time.Duration {
	o := n.o.NC.Opts
	return o.ReconnectWait + max(o.ReconnectJitter, o.ReconnectJitterTLS)
}

// redateOnReconnect restarts every silence clock, and forgets the
// unanswered probes, when this node's connection reconnected since the
// last call; it reports whether the connection is up now.
func (n *Node) redateOnReconnect(now time.Time) bool {
	r := n.o.NC.Stats().Reconnects
	n.mu.Lock()
	defer n.mu.Unlock()
	if r != n.reconnects {
		n.reconnects = r
		n.reconnectedAt = now
		// Dated a confirmGap ahead: a node whose reconnect attempt came just
		// before the server was back pauses ReconnectWait + jitter more
		// before its next, so it may be back that much after this one.
		for k, b := range n.beats {
			b.at = now.Add(n.confirmGap())
			n.beats[k] = b
		}
		clear(n.noAnswer)
	}
	return n.o.NC.Status() == nats.CONNECTED
}

// sinceReconnect is how long a "no responders" from another node may
// still mean only that it has not reconnected yet: the rest of a
// confirmGap after this node's own last reconnect (one not yet noticed
// by the watchdog counts as now).
func (n *Node) sinceReconnect() time.Duration {
	r := n.o.NC.Stats().Reconnects
	n.mu.Lock()
	defer n.mu.Unlock()
	at := n.reconnectedAt
	if r != n.reconnects {
		at = time.Now()
	}
	if at.IsZero() {
		return 0
	}
	return time.Until(at.Add(n.confirmGap()))
}

// goneGap is how long after a first probe that finds no responders a
// second must find none too before the node is taken for gone: a
// confirmGap (this node's own reconnect pause), and no less than a
// heartbeat, which leaves a node whose connection closed (alive, cut
// off) time to fence itself first (offlineFenceAt).
func (n *Node) goneGap(node string) time.Duration { return max(n.confirmGap(), n.leaseOf(node)/5) }

// leaseOf is the lease node's heartbeats carry (Lease.LeaseMS), or this
// node's when longer or not known: a node silent for a share of its own
// lease has fenced itself by then, not necessarily for that share of a
// shorter one (nodes with different --cluster-lease).
func (n *Node) leaseOf(node string) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leaseOfLocked(node)
}

func (n *Node) leaseOfLocked(node string) time.Duration {
	return max(n.o.Lease, n.beats[node].lease)
}

// beat is the heartbeat interval.
func (n *Node) beat() time.Duration { return n.o.Lease / 5 }

// noteBeat applies one change of tether_nodes to the heartbeats seen.
func (n *Node) noteBeat(e jetstream.KeyValueEntry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		// Deleted: the node left (Close) and its records were released;
		// any left behind are probed like a silent node's.
		delete(n.beats, e.Key())
		return
	}
	var l Lease
	if err := json.Unmarshal(e.Value(), &l); err != nil {
		return
	}
	b, ok := n.beats[e.Key()]
	if ok && e.Revision() <= b.rev {
		// The same write again (a reopened feed): no news of the node,
		// its silence goes on.
		return
	}
	lease := time.Duration(l.LeaseMS) * time.Millisecond
	if lease != 0 && lease != n.o.Lease && (!ok || b.lease != lease) {
		n.log.Warn("a node of the cluster runs with another lease (--cluster-lease); every node should use the same: its devices are taken only after the longer of the two", "other", e.Key(), "its lease", lease, "this node's", n.o.Lease)
	}
	n.beats[e.Key()] = beatSeen{boot: l.Boot, rev: e.Revision(), at: time.Now(), lease: lease}
	delete(n.noAnswer, e.Key())
	delete(n.unreached, e.Key())
}

// silent reports whether node has not been heard for suspectBeats
// heartbeats (or at all) at now. n.mu held.
func (n *Node) silentLocked(node string, now time.Time) bool {
	b, ok := n.beats[node]
	return !ok || now.Sub(b.at) > suspectBeats*n.leaseOfLocked(node)/5
}

// Silent reports whether this node has not heard node's heartbeat for
// suspectBeats heartbeats.
func (n *Node) Silent(node string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return node != n.o.Node && n.silentLocked(node, time.Now())
}

// suspects lists the silent nodes that hold records, not probed now.
func (n *Node) suspects(now time.Time) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, o := range n.index {
		if o.node == "" || o.node == n.o.Node || seen[o.node] {
			continue
		}
		seen[o.node] = true
		if n.silentLocked(o.node, now) && !n.probing[o.node] {
			n.probing[o.node] = true
			out = append(out, o.node)
		}
	}
	return out
}

// share returns this node's place among the nodes whose leases it has
// seen (itself included, gone excluded) and how many they are: where it
// starts in gone's records, so the survivors start apart. Heartbeats
// are not asked to be recent: while the leases' bucket elects a leader
// (it may have been gone's) every node looks silent, and the survivors
// must still agree on their places.
func (n *Node) share(gone string) (rank, of int) {
	n.mu.Lock()
	nodes := []string{n.o.Node}
	for node := range n.beats {
		if node != n.o.Node && node != gone {
			nodes = append(nodes, node)
		}
	}
	n.mu.Unlock()
	sort.Strings(nodes)
	return slices.Index(nodes, n.o.Node), len(nodes)
}

// watchdog probes the silent nodes every quarter heartbeat and adopts
// the records of those that are gone.
func (n *Node) watchdog(ctx context.Context) {
	defer n.wg.Done()
	every(ctx, n.beat()/4, func() {
		if !n.redateOnReconnect(time.Now()) {
			return // cut off from NATS: every node looks silent
		}
		for _, node := range n.suspects(time.Now()) {
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.suspect(ctx, node)
				n.mu.Lock()
				delete(n.probing, node)
				n.mu.Unlock()
			}()
		}
	})
}

// goneByProbe probes node and reports whether this probe found it gone:
// nobody serves its subject, and this node's connection did not
// reconnect while it asked (a probe sent across its own reconnect may
// find no responders only because the node is not back yet). err is
// the probe's (no answer in time: says nothing); boot is its run when it
// answered; reconnects is this node's count after the probe.
func (n *Node) goneByProbe(ctx context.Context, node string) (gone bool, boot string, reconnects uint64, err error) {
	// A probe that would run past the moment the node lapses (fence.go)
	// ends then: not answering by then is all the lapse needs to know.
	before := n.o.NC.Stats().Reconnects
	boot, err = n.probeUntil(ctx, node, n.probeBy(node))
	reconnects = n.o.NC.Stats().Reconnects
	return err == nil && boot == "" && before == reconnects, boot, reconnects, err
}

// suspect probes a silent node and, when nobody serves its subject
// twice, goneGap apart, adopts its records (node-lost); or when it has
// been silent for most of the lease, unanswered for longer than its fence
// takes, and half the cluster or more cannot reach it either (fence.go).
func (n *Node) suspect(ctx context.Context, node string) {
	if n.CutOff() {
		return // a node cut off judges nobody: every other looks gone from here
	}
	sent := time.Now()
	// The others are asked beside this node's own probe, by the same
	// moment: the lapse path needs their word, and waiting for it after
	// the probe would put the adoption a probe later.
	others := make(chan [2]int, 1)
	go func() { others <- n.reachOthers(ctx, node, n.probeBy(node)) }()
	var v [2]int
	asked := false
	votes := func() [2]int { // the answer, read once
		if !asked {
			v, asked = <-others, true
		}
		return v
	}
	gone, boot, after, err := n.goneByProbe(ctx, node)
	probed := time.Now()
	since := n.noteReached(node, sent, boot != "")
	if boot == "" && n.lapsed(node) && probed.Sub(since) >= n.reachWait(node) {
		// Silent for most of the lease, not running as far as this node's
		// probes can tell for longer than its fence takes (a partition:
		// they time out), and half the cluster or more cannot reach it
		// either — the fence's own evidence, from the other side: a node
		// cut off fenced itself by now.
		if v := votes(); cannotReach(v) {
			n.adoptGone(ctx, node, "silent for the lease, unreachable", probed, after, func(ctx context.Context, node string) bool {
				_, boot, r, _ := n.goneByProbe(ctx, node)
				return boot == "" && r == after && n.lapsed(node)
			})
			n.mu.Lock()
			n.stats.GoneByLease++
			n.mu.Unlock()
			return
		}
		n.log.Debug("a silent node is unreachable from here but not from enough of the others; its devices stay its own", "silent", node, "unreached by", v[0], "of the others", v[1])
	}
	n.mu.Lock()
	n.stats.Probes++
	first, seen := n.noAnswer[node]
	switch {
	case !gone:
		// Unanswered (says nothing), running (its heartbeats are held
		// up: the leases' bucket electing, say; records of its earlier
		// runs are the reaper's), or asked across a reconnect of this
		// node: start over.
		delete(n.noAnswer, node)
	case !seen || first.reconnects != after:
		n.noAnswer[node] = noAnswer{at: probed, reconnects: after}
	}
	n.mu.Unlock()
	if err != nil {
		n.log.Debug("a silent node's probe went unanswered; its devices stay its own", "silent", node, "err", err)
		return
	}
	if !gone || !seen || first.reconnects != after {
		return
	}
	if probed.Sub(first.at) < n.goneGap(node) {
		return // not yet long enough for a live node to reconnect, or to fence
	}
	// No responders says only that this node's server has no route to the
	// node's: one lost route (an asymmetric partition) looks the same from
	// here. A killed node is served by nobody, so the others agree at once.
	if v := votes(); !cannotReach(v) {
		n.log.Debug("nobody serves a silent node's subject from here, but enough of the others reach it; its devices stay its own", "silent", node, "unreached by", v[0], "of the others", v[1])
		return
	}
	n.adoptGone(ctx, node, "no route to it", probed, after, func(ctx context.Context, node string) bool {
		gone, _, r, _ := n.goneByProbe(ctx, node)
		return gone && r == after
	})
	n.mu.Lock()
	n.stats.GoneByRoute++
	n.mu.Unlock()
}

// noteReached keeps, per silent node, when the first of its current run
// of unanswered probes was sent (sent, unless an earlier one was): a
// probe answered (reached) or a heartbeat ends the run. It returns the
// run's start (sent when reached).
func (n *Node) noteReached(node string, sent time.Time, reached bool) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	if reached {
		delete(n.unreached, node)
		return sent
	}
	first, ok := n.unreached[node]
	if !ok {
		n.unreached[node] = sent
		return sent
	}
	return first
}

// reachWait is how long a silent node's probes must have gone unanswered
// before the lapse path takes it: a node whose renewals were failing
// while it still reached the others (an election) checks for a majority
// every quarter heartbeat, each check up to fenceProbe long, so once cut
// off it fences within that; fenceMargin after. (A probe sent just before
// the cut, its answer lost in it, starts the run at the cut.)
func (n *Node) reachWait(node string) time.Duration {
	lease := n.leaseOf(node)
	return fenceProbeOf(lease) + lease/20 + min(time.Second, lease/12)
}

// cannotReach reports whether reachOthers' answer v, with this node's
// own failure to reach the node, makes half the cluster or more (the
// node counted): the complement of the node's own fence, which needs it
// to reach a strict majority.
func cannotReach(v [2]int) bool { return 2*(1+v[0]) >= v[1]+2 }

// reachOthers asks the other nodes the quorum counts (node excluded)
// whether they reach node, each probing it by by; it returns how many
// could not (no answer in time from node, nobody serving it, or fenced)
// and how many were asked. A node that does not answer the question in
// time counts as reaching it.
func (n *Node) reachOthers(ctx context.Context, node string, by time.Time) [2]int {
	n.mu.Lock()
	var asked []string
	for _, p := range n.peersLocked() {
		if p != node {
			asked = append(asked, p)
		}
	}
	n.mu.Unlock()
	ctx, cancel := context.WithDeadline(ctx, by.Add(time.Second))
	defer cancel()
	req, _ := json.Marshal(takeoverRequest{Reach: node, Within: time.Until(by).Milliseconds()})
	var wg sync.WaitGroup
	var not atomic.Int64
	for _, p := range asked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, err := n.o.NC.RequestWithContext(ctx, takeoverSubject(p), req)
			if err == nil && string(msg.Data) == replyReach {
				not.Add(1)
			}
		}()
	}
	wg.Wait()
	return [2]int{int(not.Load()), len(asked)}
}

// answerReach probes node for another node that asked (reachOthers),
// within at most within, and answers replyReach followed by the boot it
// found (none: not reached).
// Its probe ends with the node (n.life).
func (n *Node) answerReach(m *nats.Msg, node string, within time.Duration) {
	n.mu.Lock()
	n.stats.Reaches++
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(n.life, min(max(within, 100*time.Millisecond), probeTimeout))
	defer cancel()
	boot, _ := n.probe(ctx, node)
	_ = m.Respond([]byte(replyReach + boot))
}

// adoptGone adopts every record of node, found gone at since (why) while
// this node had reconnected reconnects times, node-lost, each survivor
// starting at its own share. Only the sessions its records named when it
// was found gone: one claimed since (the node back, with a new boot or
// healed with the same) is live. A round the owners bucket stops is retried while still says the
// node is still gone.
func (n *Node) adoptGone(ctx context.Context, node, why string, since time.Time, reconnects uint64, still func(context.Context, string) bool) {
	seen := n.recordsOf(node)
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	rank, of := n.share(node)
	slices.Sort(keys)
	if len(keys) > 0 {
		at := rank * len(keys) / of
		keys = append(keys[at:], keys[:at]...)
	}
	n.log.Info("a silent node is gone ("+why+"); recording its devices node-lost", "lost", node, "records", len(keys), "share", rank, "of", of)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// The sessions the records named when the node was found gone: a
	// record rewritten since — the node back (same boot once a fenced node
	// heals) and the device connected to it again — is a live session.
	lost := func(o Owner) (presence.Reason, bool) {
		s, ok := seen[Key(o.Session.DeviceID)]
		return presence.ReasonNodeLost, o.Node == node && ok && s == o.Session.ID
	}
	n.mu.Lock()
	heard := n.beats[node].rev
	n.mu.Unlock()
	adopted, tries := 0, 0
	retryUnanswered(ctx, suspectRetry, func() bool {
		// A round stopped because the owners bucket or the journal has no
		// Raft leader yet (the gone node led it, most likely) is tried again
		// soon: the election ends any moment. Writes that do not go through
		// may also mean this node is the one cut off (a partition: every
		// other node looks gone from here); when it heals, the first write
		// that goes through must not act on a judgement made before. So each
		// retry asks again, just before its writes: still silent, no
		// reconnect of this node, and still gone.
		if tries++; tries > 1 && (!n.stillSilent(node, heard, reconnects) || !still(ctx, node)) {
			n.log.Warn("a node taken for gone is heard again; its remaining records stay its own", "node", node, "adopted", adopted)
			return false
		}
		a, stopped := n.reapKeysOf(ctx, node, keys, lost)
		adopted += a
		return stopped && ctx.Err() == nil
	})
	n.log.Info("a gone node's records adopted", "lost", node, "adopted", adopted, "took", time.Since(since).Round(time.Millisecond))
}

// stillSilent reports whether node, taken for gone while its last
// heartbeat seen was revision heard and this node had reconnected
// reconnects times, is still silent: no newer heartbeat, no reconnect of
// this node since.
func (n *Node) stillSilent(node string, heard, reconnects uint64) bool {
	n.mu.Lock()
	b := n.beats[node]
	n.mu.Unlock()
	return b.rev == heard && n.o.NC.Stats().Reconnects == reconnects
}

// every calls fn every d until ctx ends (the node's loops).
func every(ctx context.Context, d time.Duration, fn func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fn()
	}
}

// retryUnanswered calls try until it reports it need not run again,
// pausing between tries (a replicated bucket electing a Raft leader,
// 4–9 s, answers no write until it has one); it stops when ctx ends.
func retryUnanswered(ctx context.Context, pause time.Duration, try func() (again bool)) {
	for try() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}
