package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/presence"
)

// Partitions. A node cut off from the cluster (its process alive, its
// NATS traffic lost) cannot be told from a dead one by the others'
// probes: a probe to it times out (the servers keep its routes or its
// client connection until their pings time out, minutes by default), it
// does not find "no responders". So the two sides act on their own
// clocks, each with margin against the other:
//
//   - The cut-off node fences itself. It times its lease from the moment
//     it sent its last renewal that was stored (the others date the same
//     write on arrival, later). From quorumAfter (two heartbeats, when
//     the others start to suspect it) it asks the nodes it knows over
//     plain NATS every guard tick; once a round reaches no majority (so
//     by nodeFenceShare of the lease at the latest) it ends every device
//     session it holds without recording them, answers
//     probes "fenced", and refuses connects until a renewal is stored
//     again. Then it records the end of each session it ended — as an
//     adoption, a compare-and-set on the record it wrote — only if the
//     record still names that session: a node that adopted it meanwhile
//     recorded the end, and the compare-and-set fails. One end per
//     session. A node whose own NATS connection is down fences on its
//     own clock before the others can find no route to it
//     (offlineFenceAt).
//   - The others adopt its records (node-lost) once it has been silent
//     for adoptShare of the lease on their own clocks, provided their own
//     renewals are stored (the leases' bucket answers them: they are not
//     the ones cut off), their probes of it have gone unanswered for
//     reachWait, and half the cluster or more cannot reach it either
//     (reachOthers: the fence's own evidence, from the other side).
//
// At least adoptShare − nodeFenceShare of the lease (1.2 s at the
// default 12 s; 3.4 s for a node cut off at once, which fences by two
// heartbeats + fenceProbe) lies between the fence and the first
// adoption: the guard wakes at the moment the quorum rounds are due, not
// a tick later, and the others date the renewal on arrival, after its
// send. Ending a session is closing its connection.
// The adoptions then have the last 0.15 of the lease to be stored.
//
// Raft elections are why the majority is asked. An election of
// tether_nodes (4–9 s in nats-server 2.15: a random 4–9 s election
// timeout after the leader's last heartbeat; longer on a loaded machine)
// stops every node's renewals; with the last stored renewal up to one
// heartbeat (lease/5) before it, a healthy node goes up to ~11.4 s
// without one — past any fence that leaves the others time to adopt
// within the lease. A node in an election still reaches the others over
// NATS, so it does not fence; a cut-off one reaches nobody. The others
// do not adopt during the election either: their own renewals fail too.
// (BenchmarkLeaseWriteGapAtLeaderLoss measures the gap; docs/SCALING.md.)
const (
	nodeFenceShare = 0.75
	adoptShare     = 0.85
)

// replyFenced answers a probe of a node that fenced itself (followed by
// its boot): its sessions are ended, its records anyone's to adopt.
const replyFenced = "fenced:"

// fenceAfter is how long after its last stored renewal's send a node
// that reaches no majority fences itself; adoptAfter how long the others
// wait, from that renewal's arrival, before adopting its records.
func (n *Node) fenceAfter() time.Duration { return time.Duration(nodeFenceShare * float64(n.o.Lease)) }
func adoptAfterOf(lease time.Duration) time.Duration {
	return time.Duration(adoptShare * float64(lease))
}

// quorumAfter is how long after its last stored renewal's send a node
// starts asking for a majority (a round every guard tick until it renews
// or fences): when the others start to suspect it (suspectBeats
// heartbeats; a node they find no route to is taken a goneGap later), or
// fenceProbe before fenceAfter if that is sooner. A node in an election
// reaches the others and goes on; one cut off fences by then + fenceProbe.
func (n *Node) quorumAfter() time.Duration {
	return min(suspectBeats*n.beat(), n.fenceAfter()-n.fenceProbe())
}

// fenceProbe bounds the quorum probes: they start this long before the
// fence, so a node that reaches nobody fences on time.
func (n *Node) fenceProbe() time.Duration { return fenceProbeOf(n.o.Lease) }

func fenceProbeOf(lease time.Duration) time.Duration {
	return min(probeTimeout, time.Duration(nodeFenceShare*float64(lease))/2)
}

// renewRetry is the pause before a failed renewal is tried again: the
// first write after an election should not wait a heartbeat.
const renewRetry = 100 * time.Millisecond

// renew rewrites the node's lease every heartbeat, and at once again
// after a write that failed, until ctx ends.
func (n *Node) renew(ctx context.Context) {
	defer n.wg.Done()
	var failing time.Time
	next := time.Now().Add(n.beat()) // Open wrote it
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		octx, cancel := context.WithTimeout(ctx, n.beat()/2)
		start, err := n.heartbeat(octx)
		cancel()
		next = start.Add(n.beat())
		switch {
		case err != nil && failing.IsZero():
			failing = start
			n.log.Warn("lease renewal failed; retrying", "err", err)
			next = time.Now().Add(renewRetry)
		case err != nil:
			next = time.Now().Add(renewRetry)
		case !failing.IsZero():
			n.log.Info("lease renewed again", "failing for", time.Since(failing).Round(time.Millisecond))
			failing = time.Time{}
		}
	}
}

// renewed notes a stored renewal sent at start; a node that had fenced
// itself is back.
func (n *Node) renewed(start time.Time) {
	n.mu.Lock()
	gap := start.Sub(n.renewedAt)
	if n.renewedAt.IsZero() {
		gap = 0 // the first
	}
	if start.After(n.renewedAt) {
		n.renewedAt = start
	}
	wasCut := n.cut
	n.cut = false
	n.mu.Unlock()
	if gap > 2*n.beat() && !wasCut {
		// The span a fence must outlast: an election of the leases' bucket
		// shows here (docs/SCALING.md).
		n.log.Info("lease renewed after a gap", "since last stored renewal", gap.Round(time.Millisecond))
	}
	if !wasCut && gap >= adoptAfterOf(n.o.Lease) {
		// Silent long enough to have been adopted without having fenced (a
		// paused process, a stall): sessions whose records the others took
		// end now, not when this node's feed gets to the rewrites.
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.recheckHeld(gap)
		}()
	}
	if wasCut {
		n.log.Warn("lease renewed: this node is back in the cluster; recording the ends of the sessions it ended unless another node did", "cut off for", gap.Round(time.Millisecond))
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.settleCut()
		}()
	}
}

// recheckHeld reads the record of every live session this node holds
// (at the owners stream's leader) and ends, unrecorded, those another
// node took: rewritten, or taken and released (note's cases, without
// waiting for the feed).
func (n *Node) recheckHeld(gap time.Duration) {
	ctx, cancel := context.WithTimeout(n.life, time.Minute)
	defer cancel()
	type live struct {
		dev string
		h   *hold
	}
	var hs []live
	n.mu.Lock()
	for dev, h := range n.held {
		if n.liveLocked(h) {
			hs = append(hs, live{dev, h})
		}
	}
	n.mu.Unlock()
	n.log.Warn("lease renewed after longer than the others wait before adopting a node; checking this node's records", "since last stored renewal", gap.Round(time.Millisecond), "devices", len(hs))
	work := make(chan live)
	var wg sync.WaitGroup
	for range min(len(hs), reapWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range work {
				rev, o, err := n.readOwner(ctx, Key(l.dev))
				if err != nil {
					continue // the feed decides
				}
				mine := rev != 0 && o.Node == n.o.Node && o.Boot == n.boot && o.Session.ID == l.h.session
				n.mu.Lock()
				taken := !mine && n.held[l.dev] == l.h && n.liveLocked(l.h) && (rev == 0 || rev > l.h.rev)
				if taken {
					delete(n.held, l.dev)
				}
				n.mu.Unlock()
				if taken {
					n.endTaken(l.dev, l.h, o.Node)
				}
			}
		}()
	}
	for _, l := range hs {
		work <- l
	}
	close(work)
	wg.Wait()
}

// guard fences the node when its lease goes unrenewed and it reaches no
// majority, or when its NATS connection has been down long enough that
// the others may take it for gone (offlineFenceAt), and ends the
// sessions claimed while it is fenced. It wakes every quarter heartbeat,
// and exactly at the moments a fence check falls due: a fence a tick
// late eats the margin before the others adopt.
func (n *Node) guard(ctx context.Context) {
	defer n.wg.Done()
	wait := time.NewTimer(n.beat() / 4)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
		wait.Reset(n.guardOnce(ctx))
	}
}

// guardOnce is one check of guard; it returns the time to the next.
func (n *Node) guardOnce(ctx context.Context) time.Duration {
	tick := n.beat() / 4
	n.mu.Lock()
	since, cut, offline := n.renewedAt, n.cut, n.offline
	peers := len(n.peersLocked())
	n.mu.Unlock()
	if cut {
		n.sweep()
		return tick
	}
	now := time.Now()
	quorumAt := since.Add(n.quorumAfter())
	lateAt := since.Add(n.fenceAfter() - n.fenceProbe()) // rounds from here count timeouts too
	offlineAt := n.offlineFenceAt(since, offline)
	if !offline.IsZero() {
		// Down, it reaches nobody: no quorum round (it would hold the
		// guard for fenceProbe); the fence is due at the lease's fence
		// point or offlineFenceAt, whichever comes first.
		quorumAt = time.Time{}
		offlineAt = earlier(offlineAt, since.Add(n.fenceAfter()))
	}
	// next is the time to the next check: a tick, or sooner when a check
	// falls due before.
	next := func() time.Duration {
		now := time.Now()
		next := now.Add(tick)
		for _, at := range []time.Time{quorumAt, lateAt, offlineAt} {
			if at.After(now) && at.Before(next) {
				next = at
			}
		}
		return max(time.Until(next), time.Millisecond)
	}
	var why string
	switch {
	case peers > 0 && !offline.IsZero() && !now.Before(offlineAt):
		// Nobody serves this node's subject while its connection is down:
		// the others' probes find no responders, and they take its devices
		// after their goneGap (suspect.go).
		why = "its NATS connection is down"
	case !offline.IsZero() || now.Before(quorumAt) || n.quorumBy(ctx, now, lateAt):
		return next()
	default:
		why = "its lease is not renewed and it reaches no majority of the cluster"
	}
	n.mu.Lock()
	fence := n.renewedAt.Equal(since) && ctx.Err() == nil && !n.cut
	if fence {
		n.cut = true
		n.stats.Fences++
	}
	n.mu.Unlock()
	if fence {
		n.log.Warn("cut off: "+why+"; ending this node's device sessions and refusing connects until its lease is renewed",
			"since last stored renewal", time.Since(since).Round(time.Millisecond))
		n.sweep()
	}
	return tick
}

// earlier is the sooner of a and b.
func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// offlineFenceAt is when a node whose NATS connection went down at
// offline (zero: it is up), its last stored renewal sent at renewed,
// must have ended its sessions: the others probe it once it has been
// silent for suspectBeats heartbeats (dated on the renewal's arrival,
// after its send) and take it for gone when a second probe, goneGap
// (at least a heartbeat) after the first to find no responders (its
// subscriptions leave the servers with its connection), finds none
// either. fenceMargin before that. Zero offline: never.
func (n *Node) offlineFenceAt(renewed, offline time.Time) time.Time {
	if offline.IsZero() {
		return time.Time{}
	}
	return later(renewed.Add(suspectBeats*n.beat()), offline).Add(n.beat() - n.fenceMargin())
}

// fenceMargin is the least time between a node's fence on a closed
// connection and the first adoption of its records by the others.
func (n *Node) fenceMargin() time.Duration { return min(time.Second, n.beat()/2) }

// watchConn follows this node's NATS connection: offline is when it was
// last seen to go down, zero while it is up.
func (n *Node) watchConn(ctx context.Context) {
	defer n.wg.Done()
	ch := n.o.NC.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	defer n.o.NC.RemoveStatusListener(ch)
	n.noteConn()
	for {
		// The channel drops events when full: the status is read again,
		// and polled, rather than taken from it.
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-time.After(n.beat() / 4):
		}
		n.noteConn()
	}
}

func (n *Node) noteConn() {
	up := n.o.NC.Status() == nats.CONNECTED
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case up:
		n.offline = time.Time{}
	case n.offline.IsZero():
		n.offline = time.Now()
		n.log.Warn("NATS connection down; this node fences itself unless it is back in time", "by", n.offlineFenceAt(n.renewedAt, n.offline).Sub(n.offline).Round(time.Millisecond))
	}
}

// peersLocked lists the other nodes the quorum counts: those whose last
// heartbeat arrived no more than a lease before this node's last stored
// renewal (quorum). n.mu held.
func (n *Node) peersLocked() []string {
	var peers []string
	floor := n.renewedAt.Add(-n.o.Lease)
	for node, b := range n.beats {
		if node != n.o.Node && !b.at.Before(floor) {
			peers = append(peers, node)
		}
	}
	return peers
}

// quorum reports whether this node reaches a majority of the nodes it
// knows (itself included) over plain NATS: each answers a probe as
// running within fenceProbe. A node counts while its last heartbeat
// arrived no more than a lease before this node's last stored renewal:
// one killed for good (its lease expires in the bucket, and the feed
// says nothing of an expiry) stops counting once this node has renewed
// for a lease without it, so a survivor is not left a minority of dead
// nodes; a node cut off itself stops renewing, and still counts the
// peers it heard until then.
//
// quorumBy is quorum for a guard check at now: an early round (before
// lateAt) ends at lateAt at the latest, so the first late round starts
// on time and a node cut off fences by fenceAfter.
func (n *Node) quorumBy(ctx context.Context, now, lateAt time.Time) bool {
	if !now.Before(lateAt) {
		return n.quorum(ctx, false)
	}
	ectx, cancel := context.WithDeadline(ctx, lateAt)
	ok := n.quorum(ectx, true)
	cancel()
	if ok && !time.Now().Before(lateAt) {
		// Cut short at lateAt without a majority's answers: the first late
		// round now, not a tick later.
		return n.quorum(ctx, false)
	}
	return ok
}

// An early round (before fenceAfter − fenceProbe) counts a peer as not
// reached only on a certain answer — nobody serves its subject, or it
// fenced — not on a probe that timed out: during an election every
// node's renewals stop for seconds while the others, busy adopting a
// lost node's records, may answer late.
func (n *Node) quorum(ctx context.Context, early bool) bool {
	n.mu.Lock()
	peers := n.peersLocked()
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, n.fenceProbe())
	defer cancel()               // the probes still out once a majority answered
	need := (len(peers)+1)/2 + 1 // a strict majority, this node included
	if need <= 1 {
		return true
	}
	answers := make(chan bool, len(peers))
	for _, p := range peers {
		go func() {
			boot, err := n.probe(ctx, p)
			answers <- boot != "" || (early && err != nil)
		}()
	}
	// Decided as soon as it can be: a round that waited for a peer that
	// does not answer would hold the guard for fenceProbe though a
	// majority answered at once (reachWait counts on one round after a
	// cut taking at most fenceProbe).
	reached, left := 1, len(peers)
	for reached < need && reached+left >= need {
		if <-answers {
			reached++
		}
		left--
	}
	return reached >= need
}

// sweep ends, unrecorded, every live session this fenced node holds,
// keeping their holds for settleCut; and asks again to end those it
// ended before whose end has not run yet: a session between its claim
// and its place in the broker's table is not found by the first ask
// (broker.EndSession), and would stay live through the fence.
func (n *Node) sweep() {
	type ended struct {
		dev string
		h   *hold
	}
	var out, again []ended
	n.mu.Lock()
	if n.cut {
		for dev, h := range n.cutHolds {
			if !h.closed {
				again = append(again, ended{dev, h})
			}
		}
		for dev, h := range n.held {
			if n.liveLocked(h) {
				delete(n.held, dev)
				n.cutHolds[dev] = h
				out = append(out, ended{dev, h})
			}
		}
	}
	n.mu.Unlock()
	for _, e := range out {
		e.h.finish()
		n.o.End(e.dev, e.h.session)
	}
	for _, e := range again {
		n.o.End(e.dev, e.h.session)
	}
}

// cutSession reports whether session of dev is one the fence ended.
func (n *Node) cutSession(dev, session string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.cutHolds[dev]
	return h != nil && h.session == session
}

// settleCut records the end of each session the fence ended whose
// record still names it (adopted: compare-and-set on the record), and
// releases the record; a record another node took is left to it. Each
// entry stays in cutHolds until its record is adopted (adoptAt drops it
// then, its adopting hold answering from there on) or found not to name
// it: a device reconnecting meanwhile (here, or at another node that
// asks this one) must find its old session still "ended by the fence"
// and adopt it, recording its end, rather than overwrite it. It stops
// with the node (Close waits for it).
func (n *Node) settleCut() {
	ctx, cancel := context.WithTimeout(n.life, 2*time.Minute)
	defer cancel()
	n.mu.Lock()
	holds := make(map[string]*hold, len(n.cutHolds))
	for dev, h := range n.cutHolds {
		holds[dev] = h
	}
	n.mu.Unlock()
	// settled drops dev's entry unless the fence put a newer one there.
	settled := func(dev string) {
		n.mu.Lock()
		if h := holds[dev]; h != nil && n.cutHolds[dev] == h {
			delete(n.cutHolds, dev)
		}
		n.mu.Unlock()
	}
	keys := make([]string, 0, len(holds))
	byKey := make(map[string]string, len(holds))
	for dev := range holds {
		keys = append(keys, Key(dev))
		byKey[Key(dev)] = dev
	}
	lost := func(o Owner) (presence.Reason, bool) {
		h := holds[o.Session.DeviceID]
		ok := o.Node == n.o.Node && o.Boot == n.boot && h != nil && h.session == o.Session.ID
		if !ok {
			settled(o.Session.DeviceID) // another session's record now
		}
		return presence.ReasonNodeLost, ok
	}
	retryUnanswered(ctx, suspectRetry, func() bool {
		_, stopped := n.reapKeysOf(ctx, "", keys, lost)
		again := stopped && ctx.Err() == nil
		if !again && ctx.Err() == nil {
			// Every key read and, where it still named its session,
			// adopted: its end is recorded (or a claim's adoption is).
			for _, k := range keys {
				settled(byKey[k])
			}
		}
		return again
	})
}

// probeBy is when a probe of node should have its answer: probeTimeout
// from now, or when node lapses if that comes before the probe after
// this one could end (a watchdog tick later, at least probeFloor long):
// a probe that spans the moment of the lapse unanswered is all the lapse
// needs, and one that ended just before it would put the adoption a
// probe later. Never sooner than probeFloor from now: a live node on a
// loaded machine needs a moment.
func (n *Node) probeBy(node string) time.Time {
	now := time.Now()
	by := now.Add(probeTimeout)
	floor := min(probeFloor, n.beat())
	n.mu.Lock()
	b, ok := n.beats[node]
	n.mu.Unlock()
	if ok {
		if lapse := b.at.Add(adoptAfterOf(n.leaseOf(node))); lapse.Before(by.Add(n.beat()/4 + floor)) {
			by = lapse
		}
	}
	return later(by, now.Add(floor))
}

// probeFloor is the least time a probe is given: a live node on a
// loaded machine, or one whose heartbeats this node's lagging feed has
// not shown yet, must be able to answer.
const probeFloor = time.Second

// lapsed reports whether node has been silent for adoptAfter on this
// node's clock (or has no lease) while this node's own renewals are
// stored (it is not the one cut off). During an election of tether_nodes
// every node is silent to every other, and this node's renewals fail
// too; after it, a live node that looks lapsed because this node's feed
// of its heartbeats lags (its consumer is recreated after a leader
// change) answers the probes as running and is left alone (suspect
// also asks the others, and how long it went unanswered).
func (n *Node) lapsed(node string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	b, ok := n.beats[node]
	renewing := now.Sub(n.renewedAt) <= suspectBeats*n.beat()
	// This node's own heartbeats come back through its feed: when they do
	// not, the feed is stale, every other node ages here, and the others
	// asked (peersLocked) shrink to none — no lease-path adoption on a
	// view that is this node's alone (review16 G10).
	own, fed := n.beats[n.o.Node]
	fresh := fed && now.Sub(own.at) <= suspectBeats*n.beat()
	return (!ok || now.Sub(b.at) >= adoptAfterOf(n.leaseOfLocked(node))) && renewing && fresh && !n.cut
}
