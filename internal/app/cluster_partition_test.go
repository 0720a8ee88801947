package app_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/testnet"
)

// Three hubs on one external NATS server (--nats-url); node 3 reaches it
// through a proxy that the test blackholes: nothing passes either way
// and no connection closes (a partition; NATS would notice only after
// its pings, minutes). Node 3 closes its device's MQTT connection and
// refuses connects (CONNACK 3); a survivor records the device node-lost
// (404104) in the Connections log; the device connects at node 1. After
// the heal, node 3 records no second end: the journal holds connect,
// node-lost, connect for the device, once each.
func TestClusterPartitionedNodeClosesItsSessionsAndSurvivorsRecordThem(t *testing.T) {
	srv := testnet.JetStream(t)
	p := testnet.NewProxy(t, srv.Addr().String())
	hubs := startClusterWith(t, func(i int, c *app.Config) {
		c.NATSURL = srv.ClientURL()
		if i == 2 {
			c.NATSURL = p.URL()
		}
		c.Cluster.Name, c.Cluster.Listen, c.Cluster.Peers, c.Cluster.Secret = "", "", nil, ""
		c.Cluster.Replicas = 1
	})
	cut := hubs[2]
	key := hubs[0].device("d1")
	waitDevice(t, hubs, "d1")
	lost := make(chan error, 1)
	if _, rc := cut.v3("d1", username("d1"), cut.token("d1", key, time.Hour), func(o *pahov3.ClientOptions) {
		o.SetConnectionLostHandler(func(_ pahov3.Client, err error) { lost <- err })
	}); rc != 0 {
		t.Fatalf("connect on node 3: %d", rc)
	}
	hubs[0].waitEvents("d1", 1)

	at := time.Now()
	p.Blackhole()
	select {
	case <-lost:
	case <-time.After(time.Minute):
		t.Fatal("node 3 did not close the device's connection")
	}
	closed := time.Since(at)
	if !cut.Cluster().CutOff() {
		t.Error("node 3 closed the connection without being cut off")
	}
	var ended time.Duration
	eventually(t, time.Minute, func() error {
		for _, ev := range hubs[0].events.forDevice("d1") {
			if ev.Kind == presence.Disconnected {
				ended = ev.Time.Sub(at) // the survivor's clock when it recorded the end
				if ev.Reason != presence.ReasonNodeLost || ev.Result.Type != "404104" {
					return fmt.Errorf("d1's end recorded as %s %s, want node-lost 404104", ev.Reason, ev.Result.Type)
				}
				return nil
			}
		}
		return errors.New("d1's end not recorded yet")
	})
	// The cut-off node refuses the device (its refusal's record waits for
	// the journal, up to the broker's store timeout).
	if _, rc := cut.v3("d1", username("d1"), cut.token("d1", key, time.Hour), func(o *pahov3.ClientOptions) { o.SetConnectTimeout(30 * time.Second) }); rc != 3 {
		t.Errorf("a connect to the cut-off node 3: CONNACK %d, want 3 (server unavailable)", rc)
	}
	if _, rc := hubs[0].v3("d1", username("d1"), hubs[0].token("d1", key, time.Hour), func(o *pahov3.ClientOptions) { o.SetConnectTimeout(30 * time.Second) }); rc != 0 {
		t.Fatalf("d1 reconnecting at node 1 during the partition: CONNACK %d", rc)
	}
	t.Logf("partitioned at 0: node 3 closed d1's connection at %s, a survivor recorded it node-lost by %s (lease 3 s); d1 connected at node 1",
		closed.Round(time.Millisecond), ended.Round(time.Millisecond))

	p.Heal()
	eventually(t, time.Minute, func() error {
		if cut.Cluster().CutOff() {
			return errors.New("node 3 has not renewed yet")
		}
		return nil
	})
	// Node 3's stop waits for its settling of the sessions it ended; a
	// device connected afterwards marks the journal's end for the check.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cut.Stop(ctx); err != nil {
		t.Logf("stop of node 3: %v", err)
	}
	mark := hubs[0].device("mark")
	waitDevice(t, hubs[:2], "mark")
	if _, rc := hubs[1].v3("mark", username("mark"), hubs[1].token("mark", mark, time.Hour)); rc != 0 {
		t.Fatalf("connect of the marker: %d", rc)
	}
	hubs[0].waitEvents("mark", 1)
	var kinds []string
	for _, ev := range hubs[0].events.forDevice("d1") {
		if ev.Kind != presence.Refused {
			kinds = append(kinds, string(ev.Kind)+"/"+string(ev.Reason))
		}
	}
	if len(kinds) != 3 || kinds[1] != "disconnected/node-lost" || kinds[2] != "connected/" {
		t.Errorf("d1's journal: %v, want connected, disconnected/node-lost, connected", kinds)
	}
	if n := hubs[0].Presence().Connected() + hubs[1].Presence().Connected(); n != 2 {
		t.Errorf("%d devices connected on nodes 1 and 2, want 2 (d1 and the marker)", n)
	}
}
