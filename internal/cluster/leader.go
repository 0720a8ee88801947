package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A node leads a shared job for a term: from writing the job's key in
// tether_leaders until the key can expire. The key lives Options.Lease
// from its last write (the bucket's TTL); only then can another node
// create it. So the leader fences itself: it counts the term from the
// moment it sent its last successful write; fenceShare of the lease
// later, unless renewed, the term ends: Leads turns false and the job is
// told to stop (by stopShare of the lease), and at stopShare the term's
// context, which the job's work runs under, is cancelled whatever the
// job did. Both come before the key can pass to another node. A renewal
// that fails for a passing reason (a slow or unreachable cluster) keeps
// the term until its fence; one that shows another node holds the key
// ends it at once, context included. Jobs therefore never run on two
// nodes at the same time, unless a node's clock or scheduler stalls for
// more than the lease's last tenth. A node fenced that way takes the key
// back with its next successful write while the key still names it
// (retake): the bucket's election does not move the job. A retake before
// the fenced term's context was cancelled revives that term: the job,
// told nothing, goes on under the same context (a delivery engine keeps
// its runners, and with them what it delivered and has not yet seen
// acknowledged, instead of stopping and handing those events to the next
// engine to send again); OnLead hears of the fence only once the term's
// context is cancelled.

// fenceShare is the part of the lease a term lasts after its last
// renewal; stopShare the part by which the job must have stopped.
const (
	fenceShare = 0.6
	stopShare  = 0.9
)

// term is one lead of a job.
type term struct {
	job   string
	rev   uint64    // the key's revision this node wrote last
	from  time.Time // when the last successful write was sent
	until time.Time // from + fenceShare of the lease
	// ctx is the term's: cancelled when it ends.
	ctx    context.Context
	cancel context.CancelFunc
	timer  *time.Timer // the fence
	// halt cancels ctx at the stop time of a fenced term, unless a
	// retake revives the term first (n.mu guards it).
	halt *time.Timer
	// revivals counts the retakes that revived the term (n.mu).
	revivals int
}

// stopBy is when the job of t must have stopped.
func (n *Node) stopBy(t *term) time.Time {
	return t.from.Add(time.Duration(stopShare * float64(n.o.Lease)))
}

// Leads reports whether this node runs job now: not once it is stopping
// (its terms are still renewed while the jobs stop, resign).
func (n *Node) Leads(job string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.terms[job]
	return t != nil && t.ctx.Err() == nil && !n.closing
}

// campaign keeps or takes the leadership of job: the leader rewrites its
// key (compare-and-set on the key's revision); the others try to create
// it, which succeeds once the leader's key was deleted or has expired. A
// node whose term ended while the key still names it takes it back
// (retake).
func (n *Node) campaign(ctx context.Context, job string) {
	start := time.Now()
	n.mu.Lock()
	t, closing := n.terms[job], n.closing
	n.mu.Unlock()
	if t != nil {
		// The renewal writes over the revision this node wrote last: no
		// read first (a read may be answered by a replica that lags, with
		// an older revision). When that is not the key's revision any
		// more (an earlier write stored but not answered), the key is
		// read and, still naming this node, written over that revision.
		n.mu.Lock()
		rev := t.rev
		n.mu.Unlock()
		nrev, err := n.leaders.Update(ctx, job, []byte(n.o.Node), rev)
		var e jetstream.KeyValueEntry
		if conflict(err) {
			e, err = n.leaders.Get(ctx, job)
			switch {
			case err != nil:
			case string(e.Value()) != n.o.Node:
				err = errNotOurs
			default:
				nrev, err = n.leaders.Update(ctx, job, []byte(n.o.Node), e.Revision())
			}
		}
		if err == nil {
			n.extend(t, start, nrev)
			return
		}
		if lost(err, e, n.o.Node) {
			n.log.Warn("lost the lead of a shared job", "job", job, "err", err)
			n.endTerm(t, "taken by another node", true)
			return
		}
		// A passing failure: the term stands until its fence.
		n.log.Warn("could not renew the lead of a shared job; retrying until the term ends", "job", job, "until", t.until, "err", err)
		return
	}
	if closing {
		return
	}
	rev, err := n.leaders.Create(ctx, job, []byte(n.o.Node))
	if errors.Is(err, jetstream.ErrKeyExists) {
		rev, err = n.retake(ctx, job)
	}
	if err == nil && n.revive(job, start, rev) {
		n.log.Info("took back the lead of a shared job before its term stopped; the job went on", "job", job)
		return
	}
	if err == nil {
		n.log.Info("leading a shared job", "job", job)
		n.beginTerm(job, start, rev)
	}
}

// errNotOurs: the job's key names another node.
var errNotOurs = errors.New("cluster: the job's key is another node's")

// retake renews a key of job that still names this node although it
// leads no term of it: its term ended because no renewal was answered
// in time (the leaders bucket electing a Raft leader after a node loss,
// 4–9 s and more under load), or it is a previous run's key. No other
// node can have led the job since (the key is still this node's), so
// the lead resumes as soon as the bucket answers, instead of after the
// key expires and whichever node creates it first takes the job over.
// The write is a compare-and-set on the revision read: a key another
// node created meanwhile is not overwritten.
func (n *Node) retake(ctx context.Context, job string) (uint64, error) {
	e, err := n.leaders.Get(ctx, job)
	if err != nil {
		return 0, err
	}
	if string(e.Value()) != n.o.Node {
		return 0, errNotOurs
	}
	return n.leaders.Update(ctx, job, []byte(n.o.Node), e.Revision())
}

// revive makes job's fenced term, whose context is not cancelled yet,
// this node's term again after a write (of revision rev, sent at from)
// that took the key back, and reports whether there was such a term. The
// key naming this node until that write means no other node led the job
// since the term's last renewal, so the job may go on as if the term had
// never lapsed.
func (n *Node) revive(job string, from time.Time, rev uint64) bool {
	n.mu.Lock()
	t := n.fenced[job]
	ok := t != nil && n.terms[job] == nil && t.ctx.Err() == nil && !n.closing
	if ok {
		delete(n.fenced, job)
		if t.halt != nil {
			t.halt.Stop()
			t.halt = nil
		}
		t.rev = rev
		t.revivals++
		n.setFrom(t, from)
		t.timer.Reset(time.Until(t.until))
		n.terms[job] = t
	}
	n.mu.Unlock()
	if ok {
		n.wakeLeads()
	}
	return ok
}

// lost reports whether a failed renewal shows that the key is no longer
// this node's: gone (expired, deleted) or naming another node. A
// revision that did not match while the key read names this node is not
// (the read came from a lagging replica): the term stands until its
// fence, which comes before any other node can take the key.
func lost(err error, e jetstream.KeyValueEntry, node string) bool {
	switch {
	case errors.Is(err, errNotOurs), errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return true
	}
	return e != nil && string(e.Value()) != node
}

// beginTerm starts a term of job whose write (of revision rev) was sent
// at from.
func (n *Node) beginTerm(job string, from time.Time, rev uint64) {
	ctx, cancel := context.WithCancel(context.Background())
	t := &term{job: job, rev: rev, ctx: ctx, cancel: cancel}
	n.mu.Lock()
	n.setFrom(t, from)
	t.timer = time.AfterFunc(time.Until(t.until), func() { n.fence(t) })
	n.terms[job] = t
	n.mu.Unlock()
	n.wakeLeads()
}

// setFrom dates t's last write; n.mu held.
func (n *Node) setFrom(t *term, from time.Time) {
	t.from = from
	t.until = from.Add(time.Duration(fenceShare * float64(n.o.Lease)))
}

// extend moves t's fence after a renewal (of revision rev) sent at from.
func (n *Node) extend(t *term, from time.Time, rev uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t.rev = rev
	if n.terms[t.job] != t || t.ctx.Err() != nil {
		return // fenced meanwhile: the key may already be another node's
	}
	n.setFrom(t, from)
	t.timer.Reset(time.Until(t.until))
}

// fence ends t when its time is up (a renewal may have moved it).
func (n *Node) fence(t *term) {
	n.mu.Lock()
	due := !time.Now().Before(t.until)
	n.mu.Unlock()
	if due {
		n.endTerm(t, "not renewed in time", false)
	}
}

// endTerm ends t: the job is told to stop (tellLeads), and its context
// is cancelled at once when now, else at the term's stop time (the job's
// work in progress may finish until then) unless a retake revives the
// term first; the job is told only once its context is cancelled then.
func (n *Node) endTerm(t *term, why string, now bool) {
	n.mu.Lock()
	ended := n.terms[t.job] == t
	if ended {
		delete(n.terms, t.job)
	}
	t.timer.Stop()
	if !now && ended {
		n.fenced[t.job] = t
		t.halt = time.AfterFunc(time.Until(n.stopBy(t)), func() { n.halt(t) })
	}
	n.mu.Unlock()
	if ended {
		n.log.Warn("lead of a shared job ended", "job", t.job, "why", why)
	}
	if now {
		n.mu.Lock()
		if n.fenced[t.job] == t {
			delete(n.fenced, t.job)
		}
		n.mu.Unlock()
		t.cancel()
	}
	n.wakeLeads()
}

// halt cancels the context of t, fenced, at its stop time, unless a
// retake revived it meanwhile.
func (n *Node) halt(t *term) {
	n.mu.Lock()
	revived := n.terms[t.job] == t
	if !revived && n.fenced[t.job] == t {
		delete(n.fenced, t.job)
	}
	n.mu.Unlock()
	if !revived {
		t.cancel()
		n.wakeLeads()
	}
}

func (n *Node) wakeLeads() {
	select {
	case n.leadWake <- struct{}{}:
	default:
	}
}

// applyLeads brings the jobs in line with the terms through
// Options.OnLead: a job whose term ended stops (by its term's stop time,
// or ctx's deadline when earlier), a job with a new term starts under
// the term's context. Calls are serialised.
func (n *Node) applyLeads(ctx context.Context) {
	n.applyMu.Lock()
	defer n.applyMu.Unlock()
	for _, job := range Jobs {
		n.mu.Lock()
		cur := n.terms[job]
		var stopBy time.Time
		if old := n.applied[job]; old != nil {
			stopBy = n.stopBy(old)
		}
		closing := n.closing
		if cur != nil && (cur.ctx.Err() != nil || closing) {
			cur = nil // a stopping node stops every job
		}
		old := n.applied[job]
		// A fenced term goes on until its context is cancelled (halt), or
		// is revived by a retake; a stopping node stops its jobs at once.
		pending := cur == nil && old != nil && n.fenced[job] == old && old.ctx.Err() == nil && !n.closing
		revived := cur != nil && old == cur && cur.revivals != n.told[job]
		if cur != nil {
			n.told[job] = cur.revivals
		}
		n.mu.Unlock()
		if revived && n.o.OnLead != nil {
			// Told again, the same context: the job goes on (it may have
			// paused while Leads was false).
			n.o.OnLead(cur.ctx, job, true)
		}
		if old == cur || pending {
			continue
		}
		if old != nil {
			// A term halted at its stop time still gets a moment for the
			// job's stop (handing back what it holds): its work was
			// cancelled with the term's context. A stopping node's jobs
			// stop within ctx alone: their terms are still renewed.
			stopBy = later(stopBy, time.Now().Add(n.o.Lease/2))
			if closing {
				stopBy = time.Time{}
			}
			sctx, cancel := context.WithCancel(ctx)
			if !stopBy.IsZero() {
				sctx, cancel = context.WithDeadline(ctx, stopBy)
			}
			if n.o.OnLead != nil {
				n.o.OnLead(sctx, job, false)
			}
			cancel()
			old.cancel() // stopped: its context has no more use
			n.applied[job] = nil
		}
		if cur != nil {
			if n.o.OnLead != nil {
				n.o.OnLead(cur.ctx, job, true)
			}
			n.applied[job] = cur
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// tellLeads applies lead changes as they come, until ctx ends.
func (n *Node) tellLeads(ctx context.Context) {
	defer n.wg.Done()
	for {
		n.applyLeads(context.Background())
		select {
		case <-ctx.Done():
			return
		case <-n.leadWake:
		}
	}
}

// resign stops every job (bounded by ctx) while its term goes on — the
// heartbeat keeps renewing it, so a POST in flight may finish and its
// acknowledgement be stored before another node can take the job, and
// a renewal failing meanwhile still fences it — then ends the terms and
// deletes the jobs' keys, so another node takes them at once rather than
// after the lease. No job is taken after it.
func (n *Node) resign(ctx context.Context) {
	n.mu.Lock()
	n.closing = true
	var terms []*term // the jobs whose keys may name this node: led, or fenced
	for _, t := range n.terms {
		terms = append(terms, t)
	}
	for _, t := range n.fenced {
		terms = append(terms, t)
	}
	n.mu.Unlock()
	n.applyLeads(ctx)
	for _, t := range terms {
		n.endTerm(t, "node stopping", true)
	}
	for _, t := range terms {
		// Only the key this node wrote: not one another node took since.
		if e, err := n.leaders.Get(ctx, t.job); err == nil && string(e.Value()) == n.o.Node {
			_ = n.leaders.Delete(ctx, t.job, jetstream.LastRevision(e.Revision()))
		}
	}
}
