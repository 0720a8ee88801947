package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/testnet"
)

// A node that cannot renew its lease but reaches a majority keeps its
// sessions (it does not fence), so a survivor that alone cannot reach it
// must not take them: the lapse path asks the others (review F4). Here
// n1's renewals are refused (its permissions, reloaded) while it still
// reaches n3; n2 cannot reach n1 (its requests to n1 are refused); n3
// can. Over two leases nobody records an end of n1's devices.
func TestASilentNodeOneSurvivorCannotReachKeepsItsDevices(t *testing.T) {
	user := func(name string, deny ...string) *server.User {
		u := &server.User{Username: name, Password: "pw"}
		if len(deny) > 0 {
			u.Permissions = &server.Permissions{Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: deny}}
		}
		return u
	}
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		Users: []*server.User{user("n1"), user("n2", takeoverSubject("n1")), user("n3")}}
	srv := testnet.NATS(t, opts)
	url := func(name string) string { return fmt.Sprintf("nats://%s:pw@%s", name, srv.Addr()) }
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}) // the refusals are the point
	n1 := joinAt(t, url("n1"), "n1", withLease(partLease), quiet)
	n2 := joinAt(t, url("n2"), "n2", withLease(partLease), quiet)
	n3 := joinAt(t, url("n3"), "n3", withLease(partLease), quiet)
	for i := range 3 {
		n1.connect(t, fmt.Sprintf("d%d", i))
	}
	eventually(t, 30*time.Second, func() error {
		if c2, c3 := n2.Owners()["n1"], n3.Owners()["n1"]; c2 != 3 || c3 != 3 {
			return fmt.Errorf("n2 and n3 see %d and %d records of n1", c2, c3)
		}
		return nil
	})
	// n1's renewals refused from now on.
	reload := *opts
	reload.Users = []*server.User{user("n1", "$KV."+NodesBucket+"."+"n1"), user("n2", takeoverSubject("n1")), user("n3")}
	if err := srv.ReloadOptions(&reload); err != nil {
		t.Fatal(err)
	}
	stop := time.Now()
	eventually(t, time.Minute, func() error {
		n1.Node.mu.Lock()
		since := n1.renewedAt
		n1.Node.mu.Unlock()
		if time.Since(since) < 2*partLease {
			return fmt.Errorf("n1 renewed %s ago", time.Since(since).Round(time.Millisecond))
		}
		if n2.Stats().Probes == 0 {
			return fmt.Errorf("n2 probed nobody yet")
		}
		return nil
	})
	if n1.CutOff() {
		t.Error("n1 fenced itself while it reached n3")
	}
	for _, m := range []*member{n2, n3} {
		for i := range 3 {
			for _, ev := range m.eventsOf(fmt.Sprintf("d%d", i)) {
				if ev.Kind == presence.Disconnected {
					t.Errorf("%s recorded d%d's end (%s) while n1 held it live", m.o.Node, i, ev.Reason)
				}
			}
		}
	}
	if r := n3.Stats().Reaches; r == 0 {
		t.Error("n3 was never asked whether it reaches n1")
	}
	t.Logf("n1 not renewed for %s: n2 probed it %d times, n3 answered %d reach requests", time.Since(stop).Round(time.Millisecond), n2.Stats().Probes, n3.Stats().Reaches)
}

// One lost route is not a lost node (review16 G1): three servers, the
// route between the victim's server and the server leading tether_nodes
// closed, the third route up. From the leader's side nobody serves the
// victim's subject ("no responders"), but the third node reaches it, and
// the victim reaches a majority (it does not fence): nobody may record
// its devices' ends while it holds them. Watched for three leases.
func TestOneLostRouteIsNotALostNode(t *testing.T) {
	srvs, _, drop := partitionableRoutes(t)
	ms := joinServers(t, srvs, partLease)
	k := leaderOf(t, ms[0], NodesBucket)
	v, w := (k+1)%3, (k+2)%3
	victim := ms[v]
	const devices = 5
	log := holdAndWatch(t, victim, devices, ms[k], ms[w])
	drop(v, k)
	// Long enough for the no-route path (two probes goneGap apart after two
	// missed heartbeats) and the lapse path (0.85 lease) to have acted.
	time.Sleep(3 * partLease)
	live := 0
	for i := range devices {
		if victim.liveOf(fmt.Sprintf("d%d", i)) != nil {
			live++
		}
	}
	t.Logf("route s%d-s%d closed (s%d led tether_nodes): %s fenced %v, %d of %d sessions live on it; no-route takes %d, lease takes %d",
		v, k, k, victim.o.Node, victim.CutOff(), live, devices, ms[k].Stats().GoneByRoute+ms[w].Stats().GoneByRoute, ms[k].Stats().GoneByLease+ms[w].Stats().GoneByLease)
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, b := range log.bad {
		t.Error(b)
	}
}

// leaderOf is the index of the server (s<i>) leading bucket's stream.
func leaderOf(t *testing.T, m *member, bucket string) int {
	t.Helper()
	var k int
	eventually(t, time.Minute, func() error {
		st, err := m.o.JS.Stream(context.Background(), "KV_"+bucket)
		if err != nil {
			return err
		}
		c := st.CachedInfo().Cluster
		if c == nil || c.Leader == "" {
			return fmt.Errorf("%s has no leader yet", bucket)
		}
		_, err = fmt.Sscanf(c.Leader, "s%d", &k)
		return err
	})
	return k
}
