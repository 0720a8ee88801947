package sim_test

import (
	"context"
	"strings"
	"testing"
	"time"

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
	// A connection may wait queue for its turn after its CONNECT was sent
	// (WebSockets: the throttle answers after the CONNECT), so a device's
	// recorded connect time can precede its admission by that much.
	const rate, queue = 40, 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg, api := simHubLimited(t, ctx, throttle.Limits{ConnectRate: rate, ConnectBurst: rate, ConnectQueue: queue})
	faults, err := sim.ParseFaults("storm=8s")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Devices, cfg.Duration, cfg.Ramp, cfg.Profile, cfg.TokenTTL = 200, 22*time.Second, 50, "node", time.Hour
	cfg.Telemetry, cfg.WebSockets, cfg.Faults, cfg.Settle = 2*time.Second, 0.25, faults, 60*time.Second
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
