package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
	j, err := journal.Open(ctx, journal.Options{DataDir: filepath.Join(t.TempDir(), "journal")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	live := map[string]string{}
	var liveMu sync.Mutex
	node := func(name, boot string) *ledgerNode {
		n := &ledgerNode{}
		alive := func(context.Context) (map[string]string, error) {
			liveMu.Lock()
			defer liveMu.Unlock()
			out := map[string]string{}
			for k, v := range live {
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
		n.alertLedger = newAlertLedger(j.Alerts, name, boot, func() bool { return true }, alive, send, slog.New(slog.DiscardHandler))
		liveMu.Lock()
		live[name] = boot
		liveMu.Unlock()
		return n
	}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rule := alert.Rule{Name: "busy", ActionGroups: []string{"ops"}}
	fired := func(id string, at time.Time) alert.Alert {
		return alert.Alert{ID: id, Rule: rule, Condition: alert.Fired, FiredAt: at}
	}
	resolved := func(id string, firedAt, at time.Time) alert.Alert {
		return alert.Alert{ID: id, Rule: rule, Condition: alert.Resolved, FiredAt: firedAt, ResolvedAt: at}
	}
	step := func(n *ledgerNode, a alert.Alert) {
		t.Helper()
		n.note(a)
		n.settleAll(ctx)
		n.mu.Lock()
		left := len(n.pending)
		n.mu.Unlock()
		if left != 0 {
			t.Fatalf("%s left %d series unsettled", n.node, left)
		}
	}
	expect := func(n *ledgerNode, want string) {
		t.Helper()
		if got := fmt.Sprint(n.took()); got != want {
			t.Fatalf("%s handed its dispatcher %s, want %s", n.node, got, want)
		}
	}

	// n1 leads, claims the Fired and dies with it in flight.
	a := node("n1", "run-1")
	step(a, fired("id-x", t0.Add(time.Second)))
	expect(a, "[Fired id-x]")
	// While n1 lives, the next leader leaves it to n1.
	b := node("n2", "run-2")
	step(b, fired("id-x", t0.Add(time.Second)))
	expect(b, "[]")
	// kill -9: n1's run is gone. n3 fired a sample earlier (another id):
	// it sends the Fired once, as the cluster announced it.
	liveMu.Lock()
	delete(live, "n1")
	liveMu.Unlock()
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
