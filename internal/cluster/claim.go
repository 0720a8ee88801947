package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/presence"
)

// takeoverRequest asks the owning node to end a device's session. Boot
// is the run that holds it; a node in another run answers replyGone.
// Without a device it is a probe: the node answers replyRunning + its
// boot.
//
// With Reach it asks the node to probe node Reach within Within
// milliseconds and say whether it reached it (suspect.go reachOthers).
type takeoverRequest struct {
	Device  string `json:"device,omitempty"`
	Session string `json:"session,omitempty"`
	Boot    string `json:"boot,omitempty"`
	Reach   string `json:"reach,omitempty"`
	Within  int64  `json:"within,omitempty"`
}

// Replies to a takeover request.
const (
	replyReleased = "released" // ended, recorded, record released
	replyNotHeld  = "not-held" // the node does not hold that session
	replyBusy     = "busy"     // it did not end in time
	replyGone     = "gone"     // the run that held it is over (the node restarted)
	replyRunning  = "running:" // a probe's answer, followed by the boot
	replyReach    = "reach:"   // a Reach request's answer, followed by the boot found (none: not reached)
)

// Claim implements broker.Claims: it makes s the device's owner record,
// ending (or adopting) the session that held it first, and sets s.Epoch
// from the record's revision.
func (n *Node) Claim(s *presence.Session) error {
	ctx, cancel := context.WithTimeout(context.Background(), n.o.TakeoverTimeout+5*time.Second)
	defer cancel()
	key := Key(s.DeviceID)
	val, err := json.Marshal(Owner{Node: n.o.Node, Boot: n.boot, Session: s})
	if err != nil {
		return fmt.Errorf("cluster: encoding the owner of %s: %w", s.DeviceID, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cluster: claiming device %s: %w", s.DeviceID, err)
		}
		if n.CutOff() {
			return fmt.Errorf("cluster: node %s is cut off from the cluster (its lease not renewed): connects are refused until it renews", n.o.Node)
		}
		rev, cur, err := n.get(ctx, key)
		if err != nil {
			return err
		}
		if cur.Node != "" {
			free, err := n.free(ctx, key, rev, cur)
			if err != nil {
				return err
			}
			if !free {
				continue // read the record again
			}
		}
		// Held before the write: a node that reads the new record and asks
		// for it must find it here, not be told it is free.
		h := &hold{session: s.ID, done: make(chan struct{})}
		n.mu.Lock()
		n.held[s.DeviceID] = h
		n.mu.Unlock()
		var nrev uint64
		if rev == 0 {
			nrev, err = n.owners.Create(ctx, key, val)
		} else {
			nrev, err = n.owners.Update(ctx, key, val, rev)
		}
		if err != nil {
			n.mu.Lock()
			if n.held[s.DeviceID] == h {
				delete(n.held, s.DeviceID)
			}
			n.mu.Unlock()
			h.finish()
			if conflict(err) {
				continue // another claim won the race: take it over in turn
			}
			return fmt.Errorf("cluster: claiming device %s: %w", s.DeviceID, err)
		}
		s.Epoch = n.base + nrev
		n.mu.Lock()
		h.rev = nrev
		n.stats.Claims++
		n.mu.Unlock()
		return nil
	}
}

// get reads a device's owner record (rev 0 when it has none; a corrupt
// one reads as free, so a claim overwrites it).
func (n *Node) get(ctx context.Context, key string) (uint64, Owner, error) {
	e, err := n.owners.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, Owner{}, nil
	}
	if err != nil {
		return 0, Owner{}, fmt.Errorf("cluster: reading owner %s: %w", key, err)
	}
	o, err := decodeOwner(e)
	if err != nil || o.Session == nil {
		n.log.Warn("overwriting a corrupt owner record", "key", key, "err", err)
		return e.Revision(), Owner{}, nil
	}
	return e.Revision(), o, nil
}

// free gets the session of record cur (at rev) ended. It reports true
// when the record may be overwritten at rev, false when it changed and
// must be read again.
func (n *Node) free(ctx context.Context, key string, rev uint64, cur Owner) (bool, error) {
	dev := cur.Session.DeviceID
	if cur.Node == n.o.Node && cur.Boot == n.boot {
		// Ours: the broker has ended the session (its table's claim waits
		// for that); wait for its end to be stored and the record released.
		if n.cutSession(dev, cur.Session.ID) {
			// Ended by this node's fence, its end not recorded yet
			// (settleCut): recorded here first, once.
			return n.adopt(ctx, key, rev, cur, presence.ReasonNodeLost)
		}
		n.mu.Lock()
		h := n.held[dev]
		n.mu.Unlock()
		if h == nil || h.session != cur.Session.ID {
			return true, nil
		}
		select {
		case <-h.done:
			return false, nil
		case <-ctx.Done():
			return false, fmt.Errorf("cluster: device %s: the previous session on this node did not end: %w", dev, ctx.Err())
		}
	}
	if cur.Node == n.o.Node {
		return n.adopt(ctx, key, rev, cur, presence.ReasonHubRestart)
	}
	l, ok, err := n.lease(ctx, cur.Node)
	if err != nil {
		return false, err
	}
	if ok && l.Boot != cur.Boot {
		// The node started again since: that run is over.
		return n.adopt(ctx, key, rev, cur, presence.ReasonNodeLost)
	}
	// Its lease is current, or missing: ask it either way. A missing lease
	// alone does not prove a node gone: while the leases' bucket elects a
	// Raft leader (4–9 s in nats-server, longer on a loaded machine) no
	// node can write its lease, and they lapse. Whether the node still
	// serves its subject is known from NATS's routes, without JetStream.
	req, _ := json.Marshal(takeoverRequest{Device: dev, Session: cur.Session.ID, Boot: cur.Boot})
	rctx, cancel := context.WithTimeout(ctx, n.o.TakeoverTimeout)
	defer cancel()
	msg, err := n.o.NC.RequestWithContext(rctx, takeoverSubject(cur.Node), req)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		// Its lease has not run out yet, but nobody serves its subject:
		// the node is gone — unless this node has just reconnected to NATS
		// and that one has not yet (it pauses up to confirmGap between its
		// attempts): then ask again once it could be back, as the watchdog
		// does before it takes a node for gone.
		if gone, err := n.goneAfterReconnect(ctx, dev, cur); !gone {
			return false, err // back, or no answer: read the record again and ask
		}
		return n.adopt(ctx, key, rev, cur, presence.ReasonNodeLost)
	case err != nil:
		if ctx.Err() == nil && unanswered(err) {
			// A process killed a moment ago may still have its
			// subscription in the NATS server (its connection's close not
			// processed yet, on a loaded machine): the request went to it
			// and nobody answered. Ask again who serves its subject now —
			// after the same wait as above if this node has just
			// reconnected (the request may have timed out in the reconnect).
			boot, perr := n.probe(ctx, cur.Node)
			if perr == nil && boot != cur.Boot {
				if boot == "" {
					if gone, err := n.goneAfterReconnect(ctx, dev, cur); !gone {
						return false, err
					}
				}
				return n.adopt(ctx, key, rev, cur, presence.ReasonNodeLost)
			}
		}
		return false, fmt.Errorf("cluster: node %s did not hand over device %s: %w", cur.Node, dev, err)
	}
	n.mu.Lock()
	n.stats.RemoteTakeovers++
	n.mu.Unlock()
	switch string(msg.Data) {
	case replyReleased:
		return false, nil
	case replyNotHeld:
		return true, nil
	case replyGone:
		return n.adopt(ctx, key, rev, cur, presence.ReasonNodeLost)
	default:
		return false, fmt.Errorf("cluster: node %s did not end device %s's session in time (%s)", cur.Node, dev, msg.Data)
	}
}

// goneAfterReconnect decides a "nobody serves cur's node" answer: true
// (adopt) unless this node has just reconnected to NATS, in which case
// the owner may not have yet (it pauses up to confirmGap between its
// attempts): it waits until it could be back, as the watchdog does before
// it takes a node for gone, and probes again; false (read the record
// again and ask) if the node answered as cur's run or not at all.
func (n *Node) goneAfterReconnect(ctx context.Context, dev string, cur Owner) (bool, error) {
	wait := n.sinceReconnect()
	if wait <= 0 {
		return n.othersCannotReach(ctx, dev, cur)
	}
	n.mu.Lock()
	n.stats.AskedAgain++
	n.mu.Unlock()
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return false, fmt.Errorf("cluster: device %s: waiting for node %s after this node's reconnect: %w", dev, cur.Node, ctx.Err())
	}
	boot, perr := n.probe(ctx, cur.Node)
	if perr != nil || boot == cur.Boot {
		return false, nil
	}
	if boot != "" {
		return true, nil // another run of it: that one is over
	}
	return n.othersCannotReach(ctx, dev, cur)
}

// othersCannotReach confirms a "nobody serves cur's node" answer with
// the others (suspect.go reachOthers): nobody serving it from here may be
// one lost route; true when half the cluster or more cannot reach it
// either. Otherwise the claim fails (the device tries again): the node
// is alive, and its session too.
func (n *Node) othersCannotReach(ctx context.Context, dev string, cur Owner) (bool, error) {
	v := n.reachOthers(ctx, cur.Node, time.Now().Add(probeFloor))
	if cannotReach(v) {
		return true, nil
	}
	return false, fmt.Errorf("cluster: device %s: node %s holds it and is not served from here, but %d of %d other nodes reach it: not taken", dev, cur.Node, v[1]-v[0], v[1])
}

// probeTimeout bounds a probe: a live node answers from its NATS
// subscription's goroutine, without JetStream.
const probeTimeout = 2 * time.Second

// probe asks node, over NATS alone, which run of it is up: its boot, or
// "" when nobody serves its subject (its server's routes are gone: the
// process died or is cut off) or it answers that it fenced itself
// (fence.go). An error (no answer in time) says nothing
// either way.
func (n *Node) probe(ctx context.Context, node string) (string, error) {
	return n.probeUntil(ctx, node, time.Now().Add(probeTimeout))
}

// probeUntil is probe, waiting for the answer until by.
func (n *Node) probeUntil(ctx context.Context, node string, by time.Time) (string, error) {
	req, _ := json.Marshal(takeoverRequest{})
	ctx, cancel := context.WithDeadline(ctx, by)
	defer cancel()
	msg, err := n.o.NC.RequestWithContext(ctx, takeoverSubject(node), req)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("cluster: probing node %s: %w", node, err)
	}
	if strings.HasPrefix(string(msg.Data), replyFenced) {
		return "", nil // it ended its sessions: its records are anyone's
	}
	boot, ok := strings.CutPrefix(string(msg.Data), replyRunning)
	if !ok || boot == "" {
		return "", fmt.Errorf("cluster: probing node %s: unexpected answer %q", node, msg.Data)
	}
	return boot, nil
}

func (n *Node) lease(ctx context.Context, node string) (Lease, bool, error) {
	e, err := n.nodes.Get(ctx, node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("cluster: reading the lease of %s: %w", node, err)
	}
	var l Lease
	if err := json.Unmarshal(e.Value(), &l); err != nil {
		return Lease{}, false, nil // unreadable: as good as none
	}
	return l, true, nil
}

// adopt makes a dead node's session this node's, records its end for
// reason and waits until that is stored. It reports false: the record
// changed (to this node's ending record, or another's).
func (n *Node) adopt(ctx context.Context, key string, rev uint64, cur Owner, reason presence.Reason) (bool, error) {
	_, err := n.adoptAt(ctx, key, rev, cur, reason, 0)
	return false, err
}

// adoptAt is adopt returning the revision of this node's ending record
// (0: another claim changed the record first). wait, when not 0, bounds
// the record's write (an adoption round: opWait); a claim's is bounded by
// the claim.
func (n *Node) adoptAt(ctx context.Context, key string, rev uint64, cur Owner, reason presence.Reason, wait time.Duration) (uint64, error) {
	s := *cur.Session
	val, err := json.Marshal(Owner{Node: n.o.Node, Boot: n.boot, Ending: true, Session: &s})
	if err != nil {
		return 0, fmt.Errorf("cluster: %w", err)
	}
	// Held before the write (as a claim's): a claim on another node that
	// reads the ending record and asks this node for the session must
	// wait here until its end is stored, not be told it is not held and
	// journal its connect before that end.
	// One adoption of a session at a time on this node (a claim and the
	// watchdog may both find it lost): the second waits for the first to
	// be over, then its caller reads the record again (released, or
	// another's) rather than spin re-reading it meanwhile.
	h := &hold{session: s.ID, adopting: true, done: make(chan struct{})}
	n.mu.Lock()
	if o := n.held[s.DeviceID]; o != nil && o.adopting && o.session == s.ID {
		n.mu.Unlock()
		select {
		case <-o.done:
			return 0, nil
		case <-ctx.Done():
			return 0, fmt.Errorf("cluster: device %s: waiting for its adoption here: %w", s.DeviceID, ctx.Err())
		}
	}
	if o := n.held[s.DeviceID]; o != nil && !o.adopting {
		// A live session of the device here: this node's claim adopted the
		// record since it was read (a stale read, or a slow worker), so
		// the record this adoption read is no longer the device's.
		n.mu.Unlock()
		return 0, nil
	}
	n.held[s.DeviceID] = h
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		if n.held[s.DeviceID] == h {
			delete(n.held, s.DeviceID)
		}
		n.mu.Unlock()
		h.finish()
	}()
	uctx, cancel := ctx, context.CancelFunc(func() {})
	if wait > 0 {
		uctx, cancel = context.WithTimeout(ctx, wait)
	}
	nrev, err := n.owners.Update(uctx, key, val, rev)
	cancel()
	if conflict(err) {
		return 0, nil
	}
	if err != nil && wait > 0 && unanswered(err) && ctx.Err() == nil {
		// The write may have been stored though its ack did not come in
		// time (a slow quorum, a leader change after the proposal): then
		// the record names this adoption and no round reads it again.
		nrev, err = n.ownAdoption(ctx, key, &s, wait, err)
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: adopting device %s: %w", s.DeviceID, err)
	}
	n.mu.Lock()
	h.rev = nrev
	n.stats.Adopted++
	if c := n.cutHolds[s.DeviceID]; c != nil && c.session == s.ID {
		// A session this node's fence ended, adopted now (by settleCut or
		// a claim): the adopting hold answers for it from here on.
		delete(n.cutHolds, s.DeviceID)
	}
	n.mu.Unlock()
	s.Epoch = n.base + nrev
	recorded := make(chan error, 1)
	s.Ended = func(err error) { recorded <- err }
	result, detail := presence.ResultClosedRemotely, fmt.Sprintf("the cluster node %s holding this session stopped answering; recorded by %s", cur.Node, n.o.Node)
	if cur.Node == n.o.Node && reason == presence.ReasonNodeLost {
		detail = fmt.Sprintf("the cluster node %s was cut off from the cluster and closed this session; recorded when it was back", n.o.Node)
	}
	if reason == presence.ReasonHubRestart {
		result, detail = presence.ResultServerError, "the hub stopped without closing this session (crash or kill); recorded when it started again"
	}
	n.o.Adopted(&s, reason, result, detail)
	select {
	case err := <-recorded:
		if err != nil {
			return 0, fmt.Errorf("cluster: recording the end of device %s's session on %s: %w", s.DeviceID, cur.Node, err)
		}
	case <-ctx.Done():
		return 0, fmt.Errorf("cluster: recording the end of device %s's session on %s: %w", s.DeviceID, cur.Node, ctx.Err())
	}
	n.log.Info("recorded a session of a lost node as ended", "device", s.DeviceID, "lost", cur.Node, "reason", reason)
	return nrev, nil
}

// ownAdoption reads key again after this node's adoption write of s went
// unanswered (err): the record's revision when it is that adoption's,
// else err.
func (n *Node) ownAdoption(ctx context.Context, key string, s *presence.Session, wait time.Duration, err error) (uint64, error) {
	gctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	rev, cur, gerr := n.get(gctx, key)
	if gerr != nil || cur.Node != n.o.Node || cur.Boot != n.boot || !cur.Ending || cur.Session.ID != s.ID {
		return 0, err
	}
	n.log.Info("an adoption write went unanswered but was stored; recording the end", "device", s.DeviceID)
	return rev, nil
}

// Ending implements broker.Claims: the record is released once the end
// is stored.
func (n *Node) Ending(s *presence.Session) bool {
	n.mu.Lock()
	h := n.held[s.DeviceID]
	if c := n.cutHolds[s.DeviceID]; c != nil && c.session == s.ID {
		c.closed = true // the fence's end came through (sweep)
	}
	n.mu.Unlock()
	if h == nil || h.session != s.ID || h.adopting {
		// Not this node's to record (taken over, or ended by the fence):
		// presence must not keep it current.
		if n.o.Forget != nil {
			n.o.Forget(s)
		}
		return false
	}
	s.Ended = func(error) { go n.release(s.DeviceID, h) }
	return true
}

// CutOff reports whether the node has fenced itself (fence.go): cut off
// from the cluster, its sessions ended, connects refused until it renews.
func (n *Node) CutOff() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut
}

// release deletes the owner record if it is still h's, and lets waiting
// claims and takeover requests go on.
func (n *Node) release(dev string, h *hold) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n.mu.Lock()
	rev := h.rev
	h.releasing = true // its own delete is not a takeover (note)
	n.mu.Unlock()
	// The bucket electing a Raft leader (4–9 s) is no reason to leave the
	// record naming this run: its next start would record a second end of
	// a session whose end is stored.
	var err error
	retryUnanswered(ctx, 250*time.Millisecond, func() bool {
		err = n.owners.Delete(ctx, Key(dev), jetstream.LastRevision(rev))
		return unanswered(err) && ctx.Err() == nil
	})
	if err != nil && !conflict(err) {
		n.log.Warn("owner record not released", "device", dev, "err", err)
	}
	n.mu.Lock()
	if n.held[dev] == h {
		delete(n.held, dev)
	}
	n.mu.Unlock()
	h.finish()
}

// onTakeover answers another node's request to end a session here.
func (n *Node) onTakeover(m *nats.Msg) {
	var req takeoverRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		_ = m.Respond([]byte("bad request: " + err.Error()))
		return
	}
	if req.Reach != "" {
		go n.answerReach(m, req.Reach, time.Duration(req.Within)*time.Millisecond)
		return
	}
	if req.Device == "" {
		reply := replyRunning
		if n.CutOff() {
			reply = replyFenced
		}
		_ = m.Respond([]byte(reply + n.boot))
		return
	}
	if (req.Boot != "" && req.Boot != n.boot) || n.cutSession(req.Device, req.Session) {
		// Another run's, or ended by this node's fence with its end not
		// recorded: the asker adopts it and records the end (the
		// compare-and-set on the record makes that once).
		_ = m.Respond([]byte(replyGone))
		return
	}
	go func() {
		n.mu.Lock()
		h := n.held[req.Device]
		n.mu.Unlock()
		if h == nil || h.session != req.Session {
			_ = m.Respond([]byte(replyNotHeld))
			return
		}
		deadline := time.NewTimer(n.o.TakeoverTimeout)
		defer deadline.Stop()
		// The session may be between its claim and its place in the
		// broker's table for a moment: ask again until it ends.
		ended := h.adopting
		for {
			if !ended {
				ended = n.o.End(req.Device, req.Session)
			}
			select {
			case <-h.done:
				_ = m.Respond([]byte(replyReleased))
				return
			case <-deadline.C:
				_ = m.Respond([]byte(replyBusy))
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
}

// conflict reports a lost compare-and-set.
func conflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	// A replicated stream reports the constant form (10164).
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
