package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/testnet"
)

// BenchmarkLeaseWriteGapAtLeaderLoss measures what the fence must
// outlast (fence.go): three JetStream servers, an R3 bucket like
// tether_nodes, a writer on a follower rewriting one key every 50 ms;
// the bucket's leader server is cut off (its route connections
// blackholed: a graceful shutdown would hand its leadership over), and the gap between the last
// write stored before and the first stored after is reported (gap-s),
// with the writer's longest run of failed writes (failing-s). Run with
// -benchtime=1x (each iteration builds a cluster).
func BenchmarkLeaseWriteGapAtLeaderLoss(b *testing.B) {
	var gaps, failing float64
	for range b.N {
		g, f := leaderLossGap(b)
		gaps += g.Seconds()
		failing += f.Seconds()
	}
	b.ReportMetric(gaps/float64(b.N), "gap-s")
	b.ReportMetric(failing/float64(b.N), "failing-s")
}

func leaderLossGap(b *testing.B) (gap, failing time.Duration) {
	srvs, cut := partitionableCluster(b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var kv jetstream.KeyValue
	var leader string
	// A client per server; the bucket is made once a meta leader answers.
	conns := make([]jetstream.JetStream, 3)
	for i, s := range srvs {
		c, err := nats.Connect(s.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		if conns[i], err = jetstream.New(c); err != nil {
			b.Fatal(err)
		}
	}
	var err error
	for ctx.Err() == nil {
		cctx, c := context.WithTimeout(ctx, 5*time.Second)
		kv, err = conns[0].CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{Bucket: "gap", Replicas: 3, History: 1, TTL: 12 * time.Second})
		c()
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ctx.Err() != nil {
		b.Fatalf("no bucket: %v", err)
	}
	for ctx.Err() == nil {
		st, err := conns[0].Stream(ctx, "KV_gap")
		if err == nil && st.CachedInfo().Cluster != nil && st.CachedInfo().Cluster.Leader != "" {
			leader = st.CachedInfo().Cluster.Leader
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	li := int(leader[1] - '0')
	w := (li + 1) % 3
	if kv, _ = conns[w].KeyValue(ctx, "gap"); kv == nil {
		b.Fatal("no bucket handle")
	}
	put := func() bool {
		pctx, c := context.WithTimeout(ctx, time.Second)
		defer c()
		_, err := kv.Put(pctx, "n", []byte("x"))
		return err == nil
	}
	for !put() {
		time.Sleep(50 * time.Millisecond)
	}
	last := time.Now()
	cut(li) // its routes blackholed: the others hear nothing more, as after kill -9
	// Watch 20 s (more than the longest election timeout).
	var failedSince time.Time
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		start := time.Now()
		if !put() {
			if failedSince.IsZero() {
				failedSince = start
			}
			continue
		}
		if !failedSince.IsZero() {
			failing = max(failing, start.Sub(failedSince))
			failedSince = time.Time{}
		}
		gap = max(gap, start.Sub(last))
		last = start
	}
	return gap, failing
}

// partitionableCluster starts three JetStream servers whose route
// connections all pass through proxies (server i dials server j through
// its own), and returns them with cut(k), which
// blackholes every proxy of server k's routes. The servers advertise no
// reachable route address, so none dials another around the proxies.
func partitionableCluster(tb testing.TB) ([]*server.Server, func(k int)) {
	srvs, cut, _ := partitionableRoutes(tb)
	return srvs, cut
}

// partitionableRoutes is partitionableCluster, also returning drop(i, j),
// which closes the route between servers i and j (both proxies: both
// servers know at once) and keeps it closed.
func partitionableRoutes(tb testing.TB) ([]*server.Server, func(k int), func(i, j int)) {
	tb.Helper()
	// The route ports are held while the proxies pick theirs.
	var ports []int
	var held []net.Listener
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		held = append(held, l)
	}
	proxies := map[[2]int]*testnet.Proxy{}
	for i := range 3 {
		for j := range 3 {
			if j != i {
				proxies[[2]int{i, j}] = testnet.NewProxy(tb, fmt.Sprintf("127.0.0.1:%d", ports[j]))
			}
		}
	}
	for _, l := range held {
		l.Close()
	}
	srvs := make([]*server.Server, 3)
	for i := range 3 {
		opts := &server.Options{ServerName: fmt.Sprintf("s%d", i), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: tb.TempDir(), NoSigs: true, NoLog: os.Getenv("TETHER_TEST_DEBUG") == "",
			Cluster: server.ClusterOpts{Name: "part", Host: "127.0.0.1", Port: ports[i], Advertise: "127.0.0.1:1"}}
		for j := range 3 {
			if j != i {
				opts.Routes = append(opts.Routes, server.RoutesFromStr("nats-route://"+proxies[[2]int{i, j}].Addr())...)
			}
		}
		srvs[i] = testnet.NATSStarting(tb, opts)
		if !opts.NoLog {
			srvs[i].ConfigureLogger()
		}
	}
	for i, s := range srvs {
		if !s.ReadyForConnections(30 * time.Second) {
			tb.Fatalf("server %d not ready: client %v, cluster %v", i, s.Addr(), s.ClusterAddr())
		}
	}
	// Until the cluster's JetStream answers (a meta leader elected).
	_, js := testnet.JetStreamClient(tb, srvs[0].ClientURL())
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the cluster's JetStream does not answer: %v", err)
		}
	}
	return srvs, func(k int) {
			for pair, p := range proxies {
				if pair[0] == k || pair[1] == k {
					p.Blackhole()
				}
			}
		}, func(i, j int) {
			proxies[[2]int{i, j}].Drop()
			proxies[[2]int{j, i}].Drop()
		}
}
