package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/testnet"
)

// partLease is the lease of the partition tests: NATS's own detection of
// a silent connection (its pings, every 2 min) is far past anything they
// wait for, so what they see is the fence and the lease. The fence comes
// by 0.75 lease (earlier when its quorum fails sooner), the first
// adoption at 0.85 lease after the last heartbeat's arrival, and not
// before the node's probes went unanswered for reachWait.
var partLease = leaseFromEnv(4 * time.Second)

// withinLease checks, in a series at a lease given by TETHER_PART_LEASE
// (the default lease: the bound), that the partitioned node's
// devices were recorded node-lost within it. At the tests' own short
// lease the fixed parts (probe floors, the election) take a larger share
// than the lease allows for, so it is not checked there.
func withinLease(t *testing.T, took time.Duration) {
	t.Helper()
	if os.Getenv("TETHER_PART_LEASE") != "" && took > partLease {
		t.Errorf("node-lost stored %s after the cut, past the lease %s", took.Round(time.Millisecond), partLease)
	}
}

// leaseFromEnv is d, or TETHER_PART_LEASE when set: a series at the
// default lease is
//
//	TETHER_PART_LEASE=12s go test -race -count=5 -v -run 'TestAPartitionedLeaderNodeInAClusterOfServers$' ./internal/cluster/
func leaseFromEnv(d time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv("TETHER_PART_LEASE")); err == nil && v > 0 {
		return v
	}
	return d
}

func withLease(d time.Duration) func(*Options) { return func(o *Options) { o.Lease = d } }

// joinCut is a member whose NATS connection passes through a proxy the
// test can blackhole.
func joinCut(t *testing.T, srv *server.Server, name string, lease time.Duration) (*member, *testnet.Proxy) {
	t.Helper()
	p := testnet.NewProxy(t, srv.Addr().String())
	return joinAt(t, p.URL(), name, withLease(lease)), p
}

// endLog checks, as each end is recorded on a survivor, that the cut-off
// node holds no live session of that device then, and counts the ends.
type endLog struct {
	t    *testing.T
	cut  *member
	mu   sync.Mutex
	ends map[string]int
	bad  []string
}

func (l *endLog) watch(m *member) {
	m.mu.Lock()
	m.onEvent = func(ev presence.ConnectionEvent) {
		if ev.Kind != presence.Disconnected {
			return
		}
		live := l.cut.liveOf(ev.DeviceID) != nil
		l.mu.Lock()
		defer l.mu.Unlock()
		l.ends[ev.DeviceID]++
		if live {
			l.bad = append(l.bad, fmt.Sprintf("%s recorded %s's end while %s still held it live", m.o.Node, ev.DeviceID, l.cut.o.Node))
		}
		if ev.Reason != presence.ReasonNodeLost || ev.Result.Type != "404104" {
			l.bad = append(l.bad, fmt.Sprintf("%s recorded %s's end as %s %s, want node-lost 404104", m.o.Node, ev.DeviceID, ev.Reason, ev.Result.Type))
		}
	}
	m.mu.Unlock()
}

// holdAndWatch connects devices d0… on cut, waits until every survivor's
// index shows them, and returns an endLog watching the survivors.
func holdAndWatch(t *testing.T, cut *member, devices int, survivors ...*member) *endLog {
	t.Helper()
	for i := range devices {
		cut.connect(t, fmt.Sprintf("d%d", i))
	}
	eventually(t, 30*time.Second, func() error {
		for _, m := range survivors {
			if c := m.Owners()[cut.o.Node]; c != devices {
				return fmt.Errorf("%s sees %d records of %s, want %d", m.o.Node, c, cut.o.Node, devices)
			}
		}
		return nil
	})
	log := &endLog{t: t, cut: cut, ends: map[string]int{}}
	for _, m := range survivors {
		log.watch(m)
	}
	return log
}

// joinServers joins a node n<i> at each server s<i> of a cluster of
// servers (R3 buckets, bucket creation retried until the cluster answers).
func joinServers(t *testing.T, srvs []*server.Server, lease time.Duration) []*member {
	t.Helper()
	ms := make([]*member, len(srvs))
	for i, s := range srvs {
		ms[i] = joinAt(t, s.ClientURL(), fmt.Sprintf("n%d", i), func(o *Options) {
			o.Lease, o.Replicas = lease, 3
			o.Retry = func(ctx context.Context, op func(context.Context) error) error {
				var err error
				for ctx.Err() == nil {
					if err = op(ctx); err == nil {
						return nil
					}
					time.Sleep(200 * time.Millisecond)
				}
				return err
			}
		})
	}
	return ms
}

func (l *endLog) count(dev string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ends[dev]
}

// A node cut off from NATS (process alive, nothing passing either way,
// no connection closed: its probes time out, they do not find "no
// responders") ends its own sessions, and the survivors record its
// devices node-lost — each once, each only after the cut-off node closed
// that device's session — long before NATS would drop its connection. A
// device that connects to a survivor meanwhile is refused until the
// survivors took the records, then is live there only. Once the
// partition heals, the node records no second end and brings back no
// session.
func TestAPartitionedNodesDevicesAreRecordedBySurvivors(t *testing.T) {
	srv := startServer(t)
	n1, p1 := joinCut(t, srv, "n1", partLease)
	n2 := joinWith(t, srv, "n2", withLease(partLease))
	n3 := joinWith(t, srv, "n3", withLease(partLease))
	const devices = 10
	log := holdAndWatch(t, n1, devices, n2, n3)

	cut := time.Now()
	p1.Blackhole()
	fenced := make(chan time.Duration, 1)
	go func() {
		for time.Since(cut) < time.Minute && !n1.CutOff() {
			time.Sleep(10 * time.Millisecond)
		}
		fenced <- time.Since(cut)
	}()
	// d0 reconnects at n2 while n1 is cut off: refused until the
	// survivors took n1's records (a claim cannot reach n1), then live.
	var moved *presence.Session
	var refused int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for time.Since(cut) < time.Minute {
			s, err := n2.tryConnect("d0")
			if err == nil {
				moved = s
				return
			}
			refused++
		}
	}()
	eventually(t, time.Minute, func() error {
		for i := range devices {
			if c := log.count(fmt.Sprintf("d%d", i)); c == 0 {
				return fmt.Errorf("d%d: no end recorded yet", i)
			}
		}
		return nil
	})
	took := time.Since(cut)
	<-done
	if moved == nil {
		t.Fatal("d0 never connected at n2 during the partition")
	}
	if !n1.CutOff() {
		t.Error("n1 did not fence itself")
	}
	for i := range devices {
		if s := n1.liveOf(fmt.Sprintf("d%d", i)); s != nil {
			t.Errorf("d%d still live on n1 after the survivors recorded its end", i)
		}
	}
	if evs := n1.eventsOf("d0"); len(evs) != 1 {
		t.Errorf("n1 recorded %+v for d0 during the partition, want only its connect", evs)
	}
	t.Logf("partitioned at 0; n1 fenced at %s; every device recorded node-lost by %s (lease %s); d0 refused %d times at n2, then live there",
		(<-fenced).Round(time.Millisecond), took.Round(time.Millisecond), partLease, refused)
	withinLease(t, took)

	p1.Heal()
	eventually(t, time.Minute, func() error {
		if n1.CutOff() {
			return errors.New("n1 not renewed yet")
		}
		if c := n2.Owners()["n1"] + n3.Owners()["n1"]; c != 0 || n1.Owners()["n1"] != 0 {
			return fmt.Errorf("%d records still name n1", c)
		}
		if h := n1.holding(); h != 0 {
			return fmt.Errorf("n1 still holds %d records", h)
		}
		return nil
	})
	for i := range devices {
		dev := fmt.Sprintf("d%d", i)
		ends := log.count(dev)
		for _, ev := range n1.eventsOf(dev) {
			if ev.Kind == presence.Disconnected {
				ends++
			}
		}
		if ends != 1 {
			t.Errorf("%s: %d ends recorded, want 1", dev, ends)
		}
		if n1.liveOf(dev) != nil {
			t.Errorf("%s live on n1 again after the partition healed", dev)
		}
	}
	if n2.liveOf("d0") != moved || n2.OwnerOf("d0") != "n2" {
		t.Errorf("d0 is not live on n2 alone after the heal (owner %q)", n2.OwnerOf("d0"))
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, b := range log.bad {
		t.Error(b)
	}
}

// A node cut off and back before anyone took its records records each
// session its fence ended once, itself (the records still named it), and
// takes devices again once it renews.
func TestANodeBackBeforeTheSurvivorsAdoptRecordsItsOwnEnds(t *testing.T) {
	srv := startServer(t)
	// Alone: nobody to adopt, so the ends must be its own.
	n1, p1 := joinCut(t, srv, "n1", partLease)
	for i := range 3 {
		n1.connect(t, fmt.Sprintf("d%d", i))
	}
	fenceAlone(t, n1, p1)
	if _, err := n1.tryConnect("d9"); err == nil {
		t.Error("a fenced node accepted a connect")
	}
	p1.Heal()
	eventually(t, time.Minute, func() error {
		for i := range 3 {
			evs := n1.eventsOf(fmt.Sprintf("d%d", i))
			if len(evs) != 2 || evs[1].Reason != presence.ReasonNodeLost {
				return fmt.Errorf("d%d: n1 recorded %+v, want connected then node-lost", i, evs)
			}
		}
		if n1.Owners()["n1"] != 0 {
			return errors.New("records still name n1")
		}
		return nil
	})
	n1.connect(t, "d9")
}

// fenceAlone cuts m off through p and waits until it has fenced itself
// and ended its sessions. m knows only itself: a majority of one. It
// fences only when it knows others — so it is given a peer it cannot
// reach.
func fenceAlone(t *testing.T, m *member, p *testnet.Proxy) {
	t.Helper()
	p.Blackhole()
	m.Node.mu.Lock()
	m.beats["ghost"] = beatSeen{at: time.Now()}
	m.Node.mu.Unlock()
	eventually(t, time.Minute, func() error {
		if !m.CutOff() {
			return fmt.Errorf("%s not fenced yet", m.o.Node)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.live) != 0 {
			return fmt.Errorf("%d sessions still live on %s", len(m.live), m.o.Node)
		}
		return nil
	})
}

// Nodes whose renewals all fail (here: the leases' bucket is gone; in
// production, an election of its Raft group) while they reach each other
// over NATS do not fence themselves, and none adopts another's records,
// for longer than the lease.
func TestNodesThatCannotRenewButReachEachOtherKeepTheirSessions(t *testing.T) {
	srv := startServer(t)
	n1 := joinWith(t, srv, "n1", withLease(partLease))
	n2 := joinWith(t, srv, "n2", withLease(partLease))
	n3 := joinWith(t, srv, "n3", withLease(partLease))
	n1.connect(t, "d1")
	n2.connect(t, "d2")
	n3.connect(t, "d3")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n1.o.JS.DeleteKeyValue(ctx, NodesBucket); err != nil {
		t.Fatal(err)
	}
	stop := time.Now()
	// Wait until each node has gone past the fence and the others past
	// the adoption point without a renewal, probing all along.
	eventually(t, time.Minute, func() error {
		for _, m := range []*member{n1, n2, n3} {
			m.Node.mu.Lock()
			since := m.renewedAt
			m.Node.mu.Unlock()
			if time.Since(since) < 2*partLease {
				return fmt.Errorf("%s renewed %s ago", m.o.Node, time.Since(since).Round(time.Millisecond))
			}
			if m.Stats().Probes == 0 {
				return fmt.Errorf("%s probed nobody yet", m.o.Node)
			}
		}
		return nil
	})
	for _, m := range []*member{n1, n2, n3} {
		if m.CutOff() {
			t.Errorf("%s fenced itself while it reached the others", m.o.Node)
		}
		for _, d := range []string{"d1", "d2", "d3"} {
			for _, ev := range m.eventsOf(d) {
				if ev.Kind == presence.Disconnected {
					t.Errorf("%s recorded %s's end %+v", m.o.Node, d, ev)
				}
			}
		}
	}
	if n1.liveOf("d1") == nil || n2.liveOf("d2") == nil || n3.liveOf("d3") == nil {
		t.Error("a session ended")
	}
	t.Logf("no renewal for %s: nobody fenced, nobody adopted", time.Since(stop).Round(time.Millisecond))
}

// The same over an embedded-style JetStream cluster (three servers, R3
// buckets, a node on each): the server of the node cut off leads
// tether_nodes, so cutting its routes also makes the other two elect a
// new leader, and their own renewals fail meanwhile (an election: 4–9 s).
// They still reach each other, so they do not fence; the cut node
// reaches nobody and does; its devices are recorded node-lost once each
// by the survivors after the election, never while it holds them live.
func TestAPartitionedLeaderNodeInAClusterOfServers(t *testing.T) {
	srvs, cut := partitionableCluster(t)
	ms := joinServers(t, srvs, partLease)
	// The node whose server leads tether_nodes is the one cut off.
	k := leaderOf(t, ms[0], NodesBucket)
	victim := ms[k]
	var survivors []*member
	for i, m := range ms {
		if i != k {
			survivors = append(survivors, m)
			m.connect(t, fmt.Sprintf("own%d", i))
		}
	}
	const devices = 5
	for i := range devices {
		victim.connect(t, fmt.Sprintf("d%d", i))
	}
	eventually(t, 30*time.Second, func() error {
		for _, m := range survivors {
			if c := m.Owners()[victim.o.Node]; c != devices {
				return fmt.Errorf("%s sees %d records of %s", m.o.Node, c, victim.o.Node)
			}
		}
		return nil
	})
	log := &endLog{t: t, cut: victim, ends: map[string]int{}}
	for _, m := range survivors {
		log.watch(m)
	}
	// Any fence of a survivor, seen as it happens.
	var fenced []string
	var fmu sync.Mutex
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		for sctx.Err() == nil {
			for _, m := range survivors {
				if m.CutOff() {
					fmu.Lock()
					fenced = append(fenced, m.o.Node)
					fmu.Unlock()
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	at := time.Now()
	ms[0].log.Info("test: cutting off", "server", k, "node", victim.o.Node)
	cut(k)
	eventually(t, 2*time.Minute, func() error {
		for i := range devices {
			if log.count(fmt.Sprintf("d%d", i)) == 0 {
				return fmt.Errorf("d%d: no end recorded yet", i)
			}
		}
		return nil
	})
	took := time.Since(at)
	t.Logf("server s%d (tether_nodes' leader) cut off at 0; every device of %s recorded node-lost by %s (lease %s)",
		k, victim.o.Node, took.Round(time.Millisecond), partLease)
	withinLease(t, took)
	stop()
	if !victim.CutOff() {
		t.Errorf("%s did not fence itself", victim.o.Node)
	}
	fmu.Lock()
	if len(fenced) > 0 {
		t.Errorf("survivors fenced themselves during the election: %v", fenced[0])
	}
	fmu.Unlock()
	for i, m := range ms {
		if i == k {
			continue
		}
		dev := fmt.Sprintf("own%d", i)
		if m.liveOf(dev) == nil || len(m.eventsOf(dev)) != 1 {
			t.Errorf("%s's own device %s: live %v, events %+v", m.o.Node, dev, m.liveOf(dev) != nil, m.eventsOf(dev))
		}
	}
	log.mu.Lock()
	for _, b := range log.bad {
		t.Error(b)
	}
	log.mu.Unlock()
}
