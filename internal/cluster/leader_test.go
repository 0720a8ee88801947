package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// leadLog records a node's OnLead calls for the delivery job: when each
// term started and when its context ended.
type leadLog struct {
	mu     sync.Mutex
	starts []time.Time
	ends   []time.Time // when a term's context was cancelled
	stops  int
}

func (l *leadLog) onLead(ctx context.Context, job string, leading bool) {
	if job != JobDelivery {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !leading {
		l.stops++
		return
	}
	l.starts = append(l.starts, time.Now())
	i := len(l.ends)
	l.ends = append(l.ends, time.Time{})
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.ends[i] = time.Now()
		l.mu.Unlock()
	})
}

func (l *leadLog) snapshot() (starts, ends []time.Time, stops int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.starts...), append([]time.Time(nil), l.ends...), l.stops
}

// A leader that can no longer renew its lead (its heartbeat stalls, as
// when it is cut off) ends its term before the key can expire, so the
// job never runs on two nodes at once: the other node starts it only
// after the first one's term context was cancelled.
func TestALeaderThatCannotRenewStopsBeforeAnotherTakesOver(t *testing.T) {
	srv := startServer(t)
	var l1, l2 leadLog
	n1 := joinWith(t, srv, "n1", func(o *Options) { o.OnLead = l1.onLead; o.Lease = 2 * time.Second })
	joinWith(t, srv, "n2", func(o *Options) { o.OnLead = l2.onLead; o.Lease = 2 * time.Second })
	eventually(t, 2*time.Second, func() error {
		if s, _, _ := l1.snapshot(); len(s) != 1 || !n1.Leads(JobDelivery) {
			return fmt.Errorf("n1 should lead the delivery job (joined first)")
		}
		return nil
	})
	// Stall n1's heartbeat and campaigns; its connection stays up.
	n1.halt()
	eventually(t, 8*time.Second, func() error {
		if s, _, _ := l2.snapshot(); len(s) != 1 {
			return fmt.Errorf("n2 has not taken the delivery job")
		}
		return nil
	})
	_, ends, _ := l1.snapshot()
	starts2, _, _ := l2.snapshot()
	if ends[0].IsZero() || !ends[0].Before(starts2[0]) {
		t.Fatalf("n1's term ended at %v, n2's began at %v: the first must end before the second begins", ends[0], starts2[0])
	}
	if n1.Leads(JobDelivery) {
		t.Error("n1 still reports leading the delivery job")
	}
	t.Logf("n1's term ended %s before n2's began (lease 2 s)", starts2[0].Sub(ends[0]).Round(time.Millisecond))
}

// Close stops the jobs the node leads before it returns and deletes their
// keys, so another node takes them on its next campaign (Lease/5), not
// after a whole lease.
func TestCloseHandsTheJobsOverAtOnce(t *testing.T) {
	srv := startServer(t)
	var l1, l2 leadLog
	n1 := joinWith(t, srv, "n1", func(o *Options) { o.OnLead = l1.onLead; o.Lease = 5 * time.Second })
	n2 := joinWith(t, srv, "n2", func(o *Options) { o.OnLead = l2.onLead; o.Lease = 5 * time.Second })
	eventually(t, 2*time.Second, func() error {
		if !n1.Leads(JobDelivery) {
			return fmt.Errorf("n1 should lead the delivery job")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closed := time.Now()
	if err := n1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ends, stops := l1.snapshot(); stops != 1 || ends[0].IsZero() {
		t.Fatalf("after Close: %d stops, term ended %v; want the job stopped before Close returns", stops, ends[0])
	}
	eventually(t, 3*time.Second, func() error {
		if !n2.Leads(JobDelivery) {
			return fmt.Errorf("n2 has not taken the delivery job")
		}
		return nil
	})
	if d := time.Since(closed); d > 2500*time.Millisecond {
		t.Errorf("n2 took the job %s after n1 closed; want about one campaign (1 s), not a lease (5 s)", d)
	}
}

// A leader whose renewals go unanswered past its fence (the leaders
// bucket electing a Raft leader after a node loss) takes its lead back
// with its next write while the key still names it, rather than waiting
// for the key to expire and racing the other nodes to create it.
func TestALeaderFencedByUnansweredRenewalsRetakesItsKey(t *testing.T) {
	srv := startServer(t)
	const lease = 5 * time.Second
	n1 := joinWith(t, srv, "n1", func(o *Options) { o.Lease = lease })
	joinWith(t, srv, "n2", func(o *Options) { o.Lease = lease })
	if !n1.Leads(JobReaper) {
		t.Fatal("n1 should lead the reaper (joined first)")
	}
	// No renewal is sent from here: the term fences at 0.6 of the lease
	// (3 s), the key expires at 1.0 (5 s).
	n1.halt()
	eventually(t, 4*time.Second, func() error {
		if n1.Leads(JobReaper) {
			return fmt.Errorf("n1 still leads the reaper")
		}
		return nil
	})
	e, err := n1.leaders.Get(context.Background(), JobReaper)
	if err != nil || string(e.Value()) != "n1" {
		t.Skipf("the key expired before the check (a descheduled test: %v): nothing left to retake", err)
	}
	retakeNow(t, n1, JobReaper)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	e2, err := n1.leaders.Get(ctx, JobReaper)
	if err != nil || string(e2.Value()) != "n1" || e2.Revision() <= e.Revision() {
		t.Fatalf("after the retake the key is %v (err %v), want rewritten by n1 after revision %d", e2, err, e.Revision())
	}
}

// A retake before the fenced term's stop time revives the term: the job
// is not stopped, its context goes on, and it is told it leads again (a delivery engine keeps what
// it delivered and has not yet seen acknowledged, instead of stopping
// and leaving those events to be sent again).
func TestARetakeBeforeTheStopTimeKeepsTheJobRunning(t *testing.T) {
	srv := startServer(t)
	const lease = 10 * time.Second // fence at 6 s, stop time 9 s, expiry 10 s
	var l leadLog
	n1 := joinWith(t, srv, "n1", func(o *Options) { o.Lease = lease; o.OnLead = l.onLead })
	eventually(t, 5*time.Second, func() error {
		if s, _, _ := l.snapshot(); len(s) != 1 {
			return fmt.Errorf("n1 has not started the delivery job")
		}
		return nil
	})
	// No renewal from here: the term is fenced at 0.6 of the lease.
	n1.halt()
	eventually(t, lease, func() error {
		if n1.Leads(JobDelivery) {
			return fmt.Errorf("n1 still leads the delivery job")
		}
		return nil
	})
	n1.applyLeads(context.Background())
	if _, ends, stops := l.snapshot(); !ends[0].IsZero() {
		t.Skipf("the term's context was cancelled before the retake (a descheduled test, %d stops): nothing left to revive", stops)
	} else if stops != 0 {
		t.Fatalf("the job was told to stop at the fence (%d stops), before its term's context was cancelled", stops)
	}
	retakeNow(t, n1, JobDelivery)
	n1.applyLeads(context.Background())
	// Told again that it leads, under the same context (the job resumes
	// what it paused while Leads was false); never told to stop.
	starts, ends, stops := l.snapshot()
	if len(starts) != 2 || stops != 0 || !ends[0].IsZero() || !ends[1].IsZero() {
		t.Fatalf("after the retake: %d starts, %d stops, ends %v; want the first term going on, the job told again that it leads", len(starts), stops, ends)
	}
}

// retakeNow runs one campaign of job on m (its loop stopped, its term
// fenced) and fails the test unless m leads job after it: the key still
// names m.
func retakeNow(t *testing.T, m *member, job string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.campaign(ctx, job)
	if !m.Leads(job) {
		t.Fatalf("%s did not take back the key of job %s that still names it", m.Name(), job)
	}
}

// A node does not take a key that names another node, however its own
// term ended.
func TestRetakeLeavesAnotherNodesKey(t *testing.T) {
	srv := startServer(t)
	n1 := join(t, srv, "n1")
	n2 := join(t, srv, "n2")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := n2.retake(ctx, JobReaper); !errors.Is(err, errNotOurs) {
		t.Fatalf("n2 retaking n1's key: %v, want errNotOurs", err)
	}
	if !n1.Leads(JobReaper) || n2.Leads(JobReaper) {
		t.Fatal("the reaper's lead moved")
	}
}

// A renewal writes over the revision the leader wrote last; when the key
// moved on meanwhile while still naming the leader (an earlier write was
// stored but its answer lost), the leader writes over the new revision
// and keeps its term.
func TestARenewalAfterAnUnansweredWriteKeepsTheLead(t *testing.T) {
	srv := startServer(t)
	n1 := join(t, srv, "n1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !n1.Leads(JobAlerts) {
		t.Fatal("n1 should lead the alerts job")
	}
	rev, err := n1.leaders.Put(ctx, JobAlerts, []byte("n1"))
	if err != nil {
		t.Fatal(err)
	}
	n1.campaign(ctx, JobAlerts)
	e, err := n1.leaders.Get(ctx, JobAlerts)
	if err != nil || string(e.Value()) != "n1" || e.Revision() <= rev {
		t.Fatalf("key after the renewal: %v (err %v), want n1's, written after revision %d", e, err, rev)
	}
	if !n1.Leads(JobAlerts) {
		t.Fatal("n1 lost the lead")
	}
	// Another node's name in the key ends the term at once.
	if _, err := n1.leaders.Put(ctx, JobAlerts, []byte("n2")); err != nil {
		t.Fatal(err)
	}
	n1.campaign(ctx, JobAlerts)
	if n1.Leads(JobAlerts) {
		t.Fatal("n1 still leads although the key names n2")
	}
}
