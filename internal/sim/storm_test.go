package sim_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/sim"
	"github.com/tether-hub/tether/internal/throttle"
)

// TestSimStormThrottled: the storm fault against a hub whose connect rate
// is below what the fleet asks for. The devices' reconnects are refused
// (before the TLS handshake over MQTT/TLS, CONNACK 3 over WebSockets) and
// retried until the hub's rate has let them all in; the hub must have
// logged every refusal (429001, deviceless before the handshake), and the
// run must compare clean — what `tether sim --faults storm=…` checks end
// to end.
func TestSimStormThrottled(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s simulation")
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// A connection may wait queue for its turn after its CONNECT was sent
	// (WebSockets: the throttle answers after the CONNECT), so a device's
	// recorded connect time can precede its admission by that much.
	const rate, queue = 40, 500 * time.Millisecond
	a, err := app.New(app.Config{
		DataDir: dir, HubName: "localhost", Dev: true, MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
		Limits: throttle.Limits{ConnectRate: rate, ConnectBurst: rate, ConnectQueue: queue},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		_ = a.Stop(sctx)
	}()
	api, err := hubclient.FromDevDir(ctx, dir, "https://"+a.HTTPSAddr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(a.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	faults, err := sim.ParseFaults("storm=8s")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sim.Config{
		Devices: 200, Duration: 22 * time.Second, Ramp: 50, Profile: "node", TokenTTL: time.Hour,
		Telemetry: 2 * time.Second, WebSockets: 0.25, Faults: faults,
		HubName: a.HubName(), MQTTAddr: a.MQTTAddr(), HTTPSAddr: a.HTTPSAddr(), CAPEM: ca,
		Settle: 60 * time.Second,
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
		t.Errorf("the hub's reports do not match the simulation: missing %d, out of order %d, duplicated %d, wrong code %d, unexpected %d",
			c.Missing, c.OutOfOrder, c.Duplicated, c.WrongCode, c.Unexpected)
	}
	s := rep.Storm
	if s == nil || s.Dropped < 150 || s.Reconnected != s.Dropped || s.Throttled == 0 {
		t.Fatalf("storm recovery %+v", s)
	}
	// The hub let them back at its rate: no faster than (dropped − burst)/rate,
	// less the queue wait.
	if floor := float64(s.Dropped-rate)/rate - queue.Seconds(); s.AllBackS < 0.8*floor {
		t.Errorf("all back %.1fs after the storm; the rate allows no less than %.1fs", s.AllBackS, floor)
	}
	matched := map[string]int{}
	for _, r := range c.Rows {
		if r.Source == "log" && r.Type == "deviceConnect" && (r.Result == "429001" || r.Result == "429005") {
			matched[r.Result] += r.Matched
		}
	}
	if matched["429001"] == 0 {
		t.Errorf("no throttled refusal matched in the log: %+v", c.Rows)
	}
}
