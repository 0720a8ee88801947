package app_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/sim"
)

// tether sim over a cluster's nodes: devices spread over the three nodes,
// each dup copy connecting to the next node (a cross-node takeover), the
// service side's method calls and desired updates sent through node 1 for
// devices live on every node (routed). The simulator's comparison of
// what it did with node 1's webhook deliveries and log must come out
// clean.
func TestSimAcrossClusterNodes(t *testing.T) {
	// Opt-in: about 2 minutes on 2 shared cores beside the suite, and the
	// cluster itself is covered by the 3-process e2e test and the routing
	// by TestClusterRoutesCallsToTheDevicesNode. Under heavy load (load
	// 12–16) one of two runs saw a delivery hand-over send one event twice.
	if testing.Short() || os.Getenv("TETHER_SIM_CLUSTER") == "" {
		t.Skip("opt-in: TETHER_SIM_CLUSTER=1 (tether sim over 3 in-process nodes)")
	}
	hubs := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api, err := hubclient.FromDevDir(ctx, hubs[0].dir, "https://"+hubs[0].HTTPSAddr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	faults, err := sim.ParseFaults("dup=15")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, h := range hubs {
		addrs = append(addrs, h.MQTTAddr())
	}
	cfg := sim.Config{
		Devices: 90, Duration: 15 * time.Second, Ramp: 30, Profile: "node", Telemetry: 3 * time.Second, Faults: faults,
		HubName: hubs[0].HubName(), MQTTAddr: addrs[0], MQTTAddrs: addrs, HTTPSAddr: hubs[0].HTTPSAddr(),
		// Each node of the test made its own dev CA.
		Insecure: true, Settle: 60 * time.Second,
		Twin: true, Methods: true, ReportedEvery: 5 * time.Second, MethodDelay: 2 * time.Millisecond,
		MethodRate: 6, MethodNoAnswer: 0.05, MethodOffline: 0.05, DesiredRate: 3,
	}
	var out strings.Builder
	rep, err := sim.Run(ctx, cfg, sim.Env{API: api, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteText(&out)
	t.Log(out.String())
	c := rep.Comparison
	if !rep.OK() {
		t.Errorf("the cluster's reports do not match the simulation: missing %d, out of order %d, duplicated %d, wrong code %d, unexpected %d",
			c.Missing, c.OutOfOrder, c.Duplicated, c.WrongCode, c.Unexpected)
	}
	if rep.Twins != nil {
		for _, f := range rep.Twins.Failures {
			t.Errorf("twins and methods: %s", f)
		}
	}
	// Every node had devices, and the dups were takeovers across nodes.
	for i, h := range hubs {
		if h.Cluster().Stats().Claims == 0 {
			t.Errorf("node %d took no device", i+1)
		}
	}
	remote := uint64(0)
	for _, h := range hubs {
		remote += h.Cluster().Stats().RemoteTakeovers
	}
	if remote < 15 {
		t.Errorf("%d cross-node takeovers, want at least the 15 dups", remote)
	}
}
