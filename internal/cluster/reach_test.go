package cluster

import (
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
