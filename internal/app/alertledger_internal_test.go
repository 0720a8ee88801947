package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/journal"
)

// ledgerNode is one node's ledger with what it handed its dispatcher.
type ledgerNode struct {
	*alertLedger
	mu   sync.Mutex
	sent []alert.Alert
	done []func(alert.Outcome)
}

func (n *ledgerNode) took() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, a := range n.sent {
		out = append(out, string(a.Condition)+" "+a.ID)
	}
	return out
}

// ledgerNodes are ledgers on one real JetStream bucket and the live
// nodes' runs they see.
type ledgerNodes struct {
	t    *testing.T
	ctx  context.Context
	kv   jetstream.KeyValue
	hist jetstream.KeyValue // the history bucket (kv when nil)
	mu   sync.Mutex
	live map[string]string
}

func newLedgerNodes(t *testing.T, ctx context.Context) *ledgerNodes {
	j, err := journal.Open(ctx, journal.Options{DataDir: filepath.Join(t.TempDir(), "journal")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return &ledgerNodes{t: t, ctx: ctx, kv: j.Alerts, hist: j.AlertHistory, live: map[string]string{}}
}

// node starts a leading node's ledger on kv (c's bucket when nil).
func (c *ledgerNodes) node(name, boot string, kv jetstream.KeyValue) *ledgerNode {
	hist := c.hist
	if kv == nil {
		kv = c.kv
	}
	if hist == nil {
		hist = kv
	}
	n := &ledgerNode{}
	alive := func(context.Context) (map[string]string, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		out := map[string]string{}
		for k, v := range c.live {
			out[k] = v
		}
		return out, nil
	}
	send := func(a alert.Alert, done func(alert.Outcome)) {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.sent = append(n.sent, a)
		n.done = append(n.done, done)
	}
	n.alertLedger = newAlertLedger(kv, hist, name, boot, func() bool { return true }, alive, send, slog.New(slog.DiscardHandler))
	c.mu.Lock()
	c.live[name] = boot
	c.mu.Unlock()
	return n
}

// kill removes name's run from the live nodes (kill -9).
func (c *ledgerNodes) kill(name string) {
	c.mu.Lock()
	delete(c.live, name)
	c.mu.Unlock()
}

// settle notes as on n and settles; it checks how many series n keeps
// pending after.
func (c *ledgerNodes) settle(n *ledgerNode, left int, as ...alert.Alert) {
	c.t.Helper()
	for _, a := range as {
		n.note(a)
	}
	n.settleAll(c.ctx)
	n.mu.Lock()
	got := len(n.pending)
	n.mu.Unlock()
	if got != left {
		c.t.Fatalf("%s left %d series unsettled, want %d", n.node, got, left)
	}
}

// expect checks what n handed its dispatcher, in order.
func (c *ledgerNodes) expect(n *ledgerNode, want string) {
	c.t.Helper()
	if got := fmt.Sprint(n.took()); got != want {
		c.t.Fatalf("%s handed its dispatcher %s, want %s", n.node, got, want)
	}
}

var ledgerRule = alert.Rule{Name: "busy", ActionGroups: []string{"ops"}}

func firedAt(id string, at time.Time) alert.Alert {
	return alert.Alert{ID: id, Rule: ledgerRule, Condition: alert.Fired, FiredAt: at}
}

func resolvedAt(id string, fired, at time.Time) alert.Alert {
	return alert.Alert{ID: id, Rule: ledgerRule, Condition: alert.Resolved, FiredAt: fired, ResolvedAt: at}
}

// lossyKV is a bucket whose next claim (a series key's Create or Update)
// fails as a client call times out during an election: with commit, the
// write is made and only its answer is lost.
type lossyKV struct {
	jetstream.KeyValue
	mu     sync.Mutex
	armed  bool
	commit bool
}

func (kv *lossyKV) arm(commit bool) {
	kv.mu.Lock()
	kv.armed, kv.commit = true, commit
	kv.mu.Unlock()
}

// write makes a claim's write on key through w, unless it is the one
// armed to fail.
func (kv *lossyKV) write(key string, w func() (uint64, error)) (uint64, error) {
	kv.mu.Lock()
	fail, commit := kv.armed && strings.HasPrefix(key, ledgerSeries), kv.commit
	if fail {
		kv.armed = false
	}
	kv.mu.Unlock()
	if !fail {
		return w()
	}
	if commit {
		if _, err := w(); err != nil {
			return 0, err
		}
	}
	return 0, context.DeadlineExceeded
}

func (kv *lossyKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return kv.write(key, func() (uint64, error) { return kv.KeyValue.Create(ctx, key, value, opts...) })
}

func (kv *lossyKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	return kv.write(key, func() (uint64, error) { return kv.KeyValue.Update(ctx, key, value, rev) })
}

// A claim whose write committed though its call returned an error (the
// answer lost in an election) is not in this run's dispatcher: the next
// settle sends it, once. Before, the claim read as this run's own, in
// hand, and the notification was never sent.
func TestAlertLedgerAmbiguousClaim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newLedgerNodes(t, ctx)
	kv := &lossyKV{KeyValue: c.kv}
	n := c.node("n1", "run-1", kv)
	t0 := time.Now().UTC()

	// The series' first claim (a Create) commits; its answer is lost.
	kv.arm(true)
	c.settle(n, 1, firedAt("id-a", t0))
	c.expect(n, "[]")
	c.settle(n, 0)
	c.expect(n, "[Fired id-a]")
	// In this run's hands now: not sent again.
	c.settle(n, 0, firedAt("id-a", t0))
	c.expect(n, "[Fired id-a]")
	n.done[0](alert.Sent)

	// An Update that did not commit is only retried: sent once.
	kv.arm(false)
	c.settle(n, 1, resolvedAt("id-b", t0, t0.Add(time.Second)))
	c.expect(n, "[Fired id-a]")
	c.settle(n, 0)
	c.expect(n, "[Fired id-a Resolved id-a]")
}

// A Resolved whose Fired never went out (its claim's node was killed)
// goes out after that Fired, each once, though the Resolved's claim fails
// first: before, the Fired was sent ahead of the claim, again on every
// retry. A claim that committed with its answer lost sends both too.
func TestAlertLedgerOrphanedFiredOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newLedgerNodes(t, ctx)
	t0 := time.Now().UTC().Truncate(time.Second)

	kv := &lossyKV{KeyValue: c.kv}
	b := c.node("n0", "run-0", kv)
	var want []string
	for i, commit := range []bool{false, true} {
		at, id := t0.Add(time.Duration(2*i)*time.Second), fmt.Sprintf("id-%d", i)
		name := fmt.Sprintf("n%d", i+1)
		a := c.node(name, "run-"+name, nil)
		c.settle(a, 0, firedAt(id, at))
		c.expect(a, "[Fired "+id+"]")
		c.kill(name)
		kv.arm(commit)
		c.settle(b, 1, resolvedAt("id-b", at, at.Add(time.Second)))
		c.expect(b, fmt.Sprint(want))
		want = append(want, "Fired "+id, "Resolved "+id)
		c.settle(b, 0)
		c.expect(b, fmt.Sprint(want))
	}
}

// Another node's claim still being sent is not the end of the
// transition: the leader keeps it, and sends it when that node's run is
// gone before its outcome was written; it drops it once that outcome is
// written, or once the transition is past ledgerHorizon. Before, it was
// dropped at once, and a node killed before it sent lost it.
func TestAlertLedgerLiveClaimKept(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newLedgerNodes(t, ctx)
	t0 := time.Now().UTC().Truncate(time.Second)

	a := c.node("n1", "run-1", nil)
	c.settle(a, 0, firedAt("id-x", t0))
	b := c.node("n2", "run-2", nil)
	c.settle(b, 1, firedAt("id-x", t0))
	c.settle(b, 1)
	c.expect(b, "[]")
	c.kill("n1")
	c.settle(b, 0)
	c.expect(b, "[Fired id-x]")

	// n2's claim is written sent: the next leader drops its copy.
	d := c.node("n3", "run-3", nil)
	c.settle(d, 1, firedAt("id-x", t0))
	b.done[0](alert.Sent)
	c.settle(d, 0)
	c.expect(d, "[]")

	// A transition past the horizon is not waited for.
	old := alert.Alert{ID: "id-old", Rule: alert.Rule{Name: "old", ActionGroups: []string{"ops"}}, Condition: alert.Fired,
		FiredAt: time.Now().Add(-ledgerHorizon - time.Minute)}
	c.settle(b, 0, old)
	c.expect(b, "[Fired id-x Fired id-old]")
	c.settle(d, 0, old)
	c.expect(d, "[]")
}

// The claims of the ledger across node losses, on a real JetStream
// bucket: a notification in the hands of a live node is not sent again;
// one whose node was killed (its run is gone from the live nodes) is
// sent once by the next leader, under the cluster's alert id, whichever
// evaluation of the next leader's made it; a later Resolved names that
// id; a transition older than the one notified is skipped; the history
// holds each transition once.
func TestAlertLedgerClaimsAcrossNodeLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := newLedgerNodes(t, ctx)
	node := func(name, boot string) *ledgerNode { return nodes.node(name, boot, nil) }
	// Recent: a transition past ledgerHorizon is not waited for.
	t0 := time.Now().UTC().Truncate(time.Second)
	fired, resolved := firedAt, resolvedAt
	step := func(n *ledgerNode, a alert.Alert) {
		t.Helper()
		nodes.settle(n, 0, a)
	}
	expect := nodes.expect

	// n1 leads, claims the Fired and dies with it in flight.
	a := node("n1", "run-1")
	step(a, fired("id-x", t0.Add(time.Second)))
	expect(a, "[Fired id-x]")
	// While n1 lives, the next leader leaves it to n1 (and keeps it).
	b := node("n2", "run-2")
	nodes.settle(b, 1, fired("id-x", t0.Add(time.Second)))
	expect(b, "[]")
	// kill -9: n1's run is gone. n3 fired a sample earlier (another id):
	// it sends the Fired once, as the cluster announced it.
	nodes.kill("n1")
	c := node("n3", "run-3")
	step(c, fired("id-y", t0))
	expect(c, "[Fired id-x]")
	c.done[0](alert.Sent)
	step(c, fired("id-y", t0))
	expect(c, "[Fired id-x]")
	// n2 leads next: its Resolved names the cluster's alert; a stale
	// Fired of its own after that changes nothing.
	step(b, resolved("id-z", t0.Add(2*time.Second), t0.Add(5*time.Second)))
	expect(b, "[Resolved id-x]")
	b.done[0](alert.Sent)
	step(b, fired("id-w", t0.Add(4*time.Second)))
	expect(b, "[Resolved id-x]")
	// A node stopped with its notification unsent: the next leader sends
	// it though it lives.
	step(b, fired("id-v", t0.Add(6*time.Second)))
	expect(b, "[Resolved id-x Fired id-v]")
	b.done[1](alert.Abandoned)
	step(c, fired("id-u", t0.Add(7*time.Second)))
	expect(c, "[Fired id-x Fired id-v]")

	// A node that does not lead forgets what is past the horizon.
	d := node("n5", "run-5")
	d.note(fired("id-old", t0))
	d.note(resolved("id-old", t0, t0.Add(time.Minute)))
	d.note(fired("id-new", t0.Add(2*time.Minute)))
	d.forget(t0.Add(time.Minute))
	if q := d.pending[seriesKey(fired("id-new", t0))]; len(q) != 2 || q[0].Condition != alert.Resolved || q[1].ID != "id-new" {
		t.Fatalf("kept %+v, want the Resolved at the cutoff and the later Fired", q)
	}
	d.forget(t0.Add(time.Hour))
	if len(d.pending) != 0 {
		t.Fatalf("kept %d series past the horizon", len(d.pending))
	}

	// Any node's history: each transition once, in claim order.
	h := node("n4", "run-4")
	if err := h.start(ctx, func(ctx context.Context, f func(context.Context) error) error { return f(ctx) }); err != nil {
		t.Fatal(err)
	}
	defer h.stop()
	want := "[Fired id-x Resolved id-x Fired id-v]"
	for {
		var got []string
		for _, r := range h.History(alert.HistoryQuery{Rule: "busy"}) {
			got = append(got, string(r.Condition)+" "+r.AlertID)
		}
		if fmt.Sprint(got) == want {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("history %v, want %s", got, want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// The history's keys expire (their own TTL, shortened here to the
// server's least, a second) and leave every node's history; the series
// claim beside them, written without one, stays.
func TestAlertLedgerHistoryExpiresClaimsStay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := newLedgerNodes(t, ctx)
	n := nodes.node("n1", "run-1", nil)
	n.historyKeep = time.Second
	once := func(ctx context.Context, op func(context.Context) error) error { return op(ctx) }
	if err := n.start(ctx, once); err != nil {
		t.Fatal(err)
	}
	defer n.stop()
	a := firedAt("id-a", time.Now().UTC())
	nodes.settle(n, 0, a)
	nodes.expect(n, "[Fired id-a]")
	n.done[0](alert.Sent)
	key := ledgerHistory + "id-a." + string(alert.Fired)
	wait := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			if ctx.Err() != nil {
				t.Fatalf("%s: %v", what, ctx.Err())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("the Fired in the history", func() bool { return len(n.History(alert.HistoryQuery{})) == 1 })
	wait("the history key expired", func() bool {
		_, err := nodes.hist.Get(ctx, key)
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	wait("the Fired gone from the history", func() bool { return len(n.History(alert.HistoryQuery{})) == 0 })
	e, err := nodes.kv.Get(ctx, seriesKey(a))
	if err != nil {
		t.Fatalf("the series claim: %v (a claim must not expire)", err)
	}
	if !strings.Contains(string(e.Value()), `"state":"sent"`) {
		t.Errorf("the series claim reads %s, want it sent", e.Value())
	}
}

// On a bucket made without per-key TTLs (an older server in the cluster)
// the history is kept without expiry, not lost.
func TestAlertLedgerHistoryWithoutPerKeyTTLs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j, err := journal.Open(ctx, journal.Options{DataDir: filepath.Join(t.TempDir(), "journal")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	kv, err := j.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "alerts_no_ttl"})
	if err != nil {
		t.Fatal(err)
	}
	nodes := &ledgerNodes{t: t, ctx: ctx, kv: kv, live: map[string]string{}}
	n := nodes.node("n1", "run-1", nil)
	nodes.settle(n, 0, firedAt("id-a", time.Now().UTC()))
	e, err := kv.Get(ctx, ledgerHistory+"id-a."+string(alert.Fired))
	if err != nil {
		t.Fatalf("history key: %v", err)
	}
	if !strings.Contains(string(e.Value()), "id-a") {
		t.Errorf("history key holds %s", e.Value())
	}
}

// The history lives in its own bucket (tether_alerts keeps no per-key
// TTLs, so an older binary still opens it); the history keys earlier
// builds wrote in tether_alerts are still read into the history.
func TestAlertLedgerReadsTheHistoryOfBothBuckets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes := newLedgerNodes(t, ctx)
	old, err := json.Marshal(firedAt("id-old", time.Now().UTC()).Record())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.kv.Create(ctx, ledgerHistory+"id-old."+string(alert.Fired), old); err != nil {
		t.Fatal(err)
	}
	n := nodes.node("n1", "run-1", nil)
	once := func(ctx context.Context, op func(context.Context) error) error { return op(ctx) }
	if err := n.start(ctx, once); err != nil {
		t.Fatal(err)
	}
	defer n.stop()
	nodes.settle(n, 0, firedAt("id-new", time.Now().UTC()))
	nodes.expect(n, "[Fired id-new]")
	n.done[0](alert.Sent)
	key := ledgerHistory + "id-new." + string(alert.Fired)
	for len(n.History(alert.HistoryQuery{})) != 2 {
		if ctx.Err() != nil {
			t.Fatalf("history %+v, want id-old and id-new", n.History(alert.HistoryQuery{}))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := nodes.hist.Get(ctx, key); err != nil {
		t.Errorf("id-new's history key in %s: %v", nodes.hist.Bucket(), err)
	}
	if _, err := nodes.kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("id-new's history key in %s: %v, want none there", nodes.kv.Bucket(), err)
	}
	st, err := nodes.kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config; cfg.AllowMsgTTL {
		t.Errorf("%s allows per-key TTLs: an older binary could not open it", nodes.kv.Bucket())
	}
}
