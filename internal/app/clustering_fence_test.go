package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/cluster"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/events/kvstore"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/metrics"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/testnet"
)

// postLog records, per node (the CloudEvents origin header), when each
// POST arrived and when it ended (answered, or its connection closed by
// the sender), and how many are still held.
type postLog struct {
	mu     sync.Mutex
	posts  []postSpan
	open   map[string]int
	starts map[string][]time.Time
}

type postSpan struct {
	node       string
	start, end time.Time
}

func (l *postLog) begin(node string, at time.Time) {
	l.mu.Lock()
	if l.open == nil {
		l.open, l.starts = map[string]int{}, map[string][]time.Time{}
	}
	l.open[node]++
	l.starts[node] = append(l.starts[node], at)
	l.mu.Unlock()
}

// begun lists when node's POSTs arrived, in order.
func (l *postLog) begun(node string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.starts[node]...)
}

func (l *postLog) done(s postSpan) {
	l.mu.Lock()
	l.open[s.node]--
	l.posts = append(l.posts, s)
	l.mu.Unlock()
}

// held is how many POSTs of node the receiver holds now.
func (l *postLog) held(node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[node]
}

// of lists node's POSTs that ended.
func (l *postLog) of(node string) []postSpan {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []postSpan
	for _, s := range l.posts {
		if s.node == node {
			out = append(out, s)
		}
	}
	return out
}

// fenceNode is a cluster node with the hub's delivery wiring (startEvents,
// onLead, the hand-over), reaching NATS through its own proxy.
func fenceNode(t *testing.T, ctx context.Context, srv *server.Server, name string, lease time.Duration) (*App, *testnet.Proxy) {
	t.Helper()
	p := testnet.NewProxy(t, srv.Addr().String())
	nc, js := testnet.JetStreamClient(t, p.URL(), nats.Name(name), nats.MaxReconnects(-1))
	yes := true
	log := slog.New(slog.DiscardHandler)
	a := &App{cfg: Config{HubName: "hub-" + name, AllowLoopbackEndpoints: &yes, Cluster: ClusterConfig{NodeName: name, Lease: lease}},
		log: log, journal: &journal.Journal{NC: nc, JS: js, Replicas: 1}}
	store, err := metrics.OpenStore(ctx, metrics.StoreOptions{Path: filepath.Join(t.TempDir(), "metrics.db"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	if a.metrics, err = metrics.NewCollector(metrics.CollectorOptions{JS: js, Store: store, Logger: log}); err != nil {
		t.Fatal(err)
	}
	if err := a.startEvents(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := cluster.Open(ctx, cluster.Options{JS: js, NC: nc, Node: name, Lease: lease, Logger: log,
		End:     func(string, string) bool { return false },
		Adopted: func(*presence.Session, presence.Reason, presence.Result, string) {},
		OnLead:  a.onLead})
	if err != nil {
		t.Fatal(err)
	}
	a.cluster = n
	a.leadNode.Store(n)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = n.Close(sctx)
		_ = a.Stop(sctx)
	})
	return a, p
}

// The delivery lead cut off from NATS (renewals unanswered, its ledger
// subject gone: the new lead skips it at once) while a slow receiver
// holds its POSTs: no POST of the old lead is still running when the new
// lead's first POST arrives. (With the sends running until the engine's
// Stop deadline, 1.4 leases, the old lead's POSTs ran into the new lead's.)
func TestCutOffDeliveryLeadStopsPostingBeforeTheNextLeadStarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	srv := startNATS(t)
	j, err := journal.Open(ctx, journal.Options{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)

	// A slow endpoint: each POST is held 4 s, or until its sender
	// closes the connection.
	var log postLog
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions { // CloudEvents abuse protection
			w.Header().Set("WebHook-Allowed-Origin", r.Header.Get("WebHook-Request-Origin"))
			return
		}
		s := postSpan{node: r.Header.Get("WebHook-Request-Origin"), start: time.Now()}
		log.begin(s.node, s.start)
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(4 * time.Second):
		case <-r.Context().Done():
		}
		s.end = time.Now()
		log.done(s)
	}))
	t.Cleanup(rc.Close)

	store, err := kvstore.New(ctx, j.JS, kvstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sub := events.Subscription{Name: "fence", EventDeliverySchema: events.CloudEventSchemaV1_0,
		Destination: events.Destination{Properties: events.DestinationProperties{EndpointURL: rc.URL}}}
	sub.ApplyDefaults()
	sub.ProvisioningState = events.Succeeded
	if _, err := store.Create(ctx, sub); err != nil {
		t.Fatal(err)
	}

	// 3 s: the margin between the old lead's last send (0.9 L) and the
	// new lead's first (after 1.0 L) is 0.3 s, for a loaded machine.
	const lease = 3 * time.Second
	a1, p1 := fenceNode(t, ctx, srv, "n1", lease)
	waitUntil(t, 20*time.Second, "n1 leads the delivery job", func() bool { return a1.cluster.Leads(cluster.JobDelivery) })
	a2, _ := fenceNode(t, ctx, srv, "n2", lease)

	// Events of 20 devices, one every 10 ms, until the test ends.
	pctx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	go func() {
		for i := 0; pctx.Err() == nil; i++ {
			dev := fmt.Sprintf("dev%02d", i%20)
			ce := presence.ConnectionEvent{ID: fmt.Sprintf("%s/%064X", dev, i), Kind: presence.Connected, Time: time.Now(),
				Hub: "hub", DeviceID: dev, Sequence: fmt.Sprintf("%064X", i), Protocol: "MQTT", ProtocolVersion: 4}
			b, _ := json.Marshal(ce)
			_, _ = j.JS.Publish(pctx, journal.ConnSubject(dev, string(ce.Kind)), b)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	waitUntil(t, 30*time.Second, "n1 delivering", func() bool { return len(log.begun("hub-n1")) >= 5 && log.held("hub-n1") > 0 })

	cut := time.Now()
	p1.Sever()
	waitUntil(t, 60*time.Second, "n2 delivering", func() bool { return len(log.begun("hub-n2")) >= 1 })
	stopPub()
	if !a2.cluster.Leads(cluster.JobDelivery) {
		t.Error("n2 delivers without leading the job")
	}
	// Every POST n1 started must have ended before n2's first began: wait
	// until the receiver holds none of n1's (each is logged as it ends).
	waitUntil(t, 20*time.Second, "n1's POSTs all ended", func() bool { return log.held("hub-n1") == 0 })
	first := log.begun("hub-n2")[0]
	n1 := log.of("hub-n1")
	sort.Slice(n1, func(i, k int) bool { return n1[i].end.Before(n1[k].end) })
	last := n1[len(n1)-1]
	if !last.end.Before(first) {
		t.Fatalf("n1's last POST ran until %s after the cut, n2's first began %s after it: two nodes delivered at once",
			last.end.Sub(cut).Round(time.Millisecond), first.Sub(cut).Round(time.Millisecond))
	}
	t.Logf("cut at 0; n1's last POST ended at %s, n2's first began at %s (lease %s)",
		last.end.Sub(cut).Round(time.Millisecond), first.Sub(cut).Round(time.Millisecond), lease)
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
