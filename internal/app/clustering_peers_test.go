package app

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/cluster"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/testnet"
)

// The peers a hand-over asks come from memory when the nodes bucket does
// not answer (its Raft group electing, as during every hand-over a node
// loss causes): the book keeps what the last answered listings showed,
// and forgets a node only peerKeep leases after the last listing that
// still answered without it.
func TestHandOverPeersComeFromMemoryWhenTheBucketDoesNotAnswer(t *testing.T) {
	ns := startNATS(t)
	nc, js := testnet.JetStreamClient(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: cluster.NodesBucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if _, err := kv.Put(ctx, n, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	a := &App{cfg: Config{Cluster: ClusterConfig{NodeName: "n1", Lease: time.Second}}, journal: &journal.Journal{NC: nc, JS: js}, subs: &subscriptionService{}}

	got, err := a.clusterPeers(ctx)
	if err != nil || !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("bucket answering: %v, %v; want n1 n2 n3", got, err)
	}
	// The bucket stops answering (here: its stream is gone, so every
	// listing fails): the names come from memory.
	if err := js.DeleteKeyValue(ctx, cluster.NodesBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := a.listPeers(ctx); err == nil {
		t.Fatal("listing a deleted bucket succeeded; the test needs a failing listing")
	}
	got, err = a.clusterPeers(ctx)
	if err != nil || !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("bucket not answering: %v, %v; want n1 n2 n3 from memory", got, err)
	}

	// A listing that answers without n3 keeps it for peerKeep leases
	// after the last listing that showed it (a lead cut off loses its
	// lease before the hand-over it causes), then forgets it.
	b := &peerBook{}
	t0 := time.Unix(1000, 0)
	b.note([]string{"n1", "n2", "n3"}, t0)
	b.note([]string{"n1", "n2"}, t0.Add(peerKeep*time.Second))
	if got := b.names(peerKeep * time.Second); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("within %d leases: %v, want n3 kept", peerKeep, got)
	}
	b.note([]string{"n1", "n2"}, t0.Add(peerKeep*time.Second+time.Millisecond))
	if got := b.names(peerKeep * time.Second); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("past %d leases: %v, want n3 forgotten", peerKeep, got)
	}
	// Nothing known and nothing answered: an error, not an empty list.
	empty := &App{cfg: a.cfg, journal: a.journal, subs: &subscriptionService{}}
	if got, err := empty.clusterPeers(ctx); err == nil {
		t.Fatalf("no node known and the bucket not answering: %v and no error", got)
	}
}

// startNATS runs a JetStream server on a loopback port for the test.
func startNATS(t *testing.T) *server.Server { return testnet.JetStream(t) }
