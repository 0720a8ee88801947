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
)

// TestSimAllFaults is the acceptance run in small: 120 devices for 20 s
// against an in-process hub with every fault on, over TLS and
// WebSockets. The hub must report everything the simulator did.
func TestSimAllFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s simulation")
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(app.Config{
		DataDir: dir, HubName: "localhost", Dev: true,
		MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
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
	faults, err := sim.ParseFaults("drop=10%/min,dup=3,silence=2%,expired=2%,wrongkey=2%,disabled=2%,storm=12s,slow=2%")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sim.Config{
		Devices: 120, Duration: 20 * time.Second, Ramp: 60, Profile: "node", TokenTTL: 14 * time.Second,
		Telemetry: 2 * time.Second, WebSockets: 0.25, Faults: faults,
		HubName: a.HubName(), MQTTAddr: a.MQTTAddr(), HTTPSAddr: a.HTTPSAddr(), CAPEM: ca,
		SilenceKeepAlive: 2 * time.Second, DisableFor: 4 * time.Second, SlowTLSDelay: 300 * time.Millisecond,
		Settle: 60 * time.Second,
		// Twins and methods on, with the service side calling and updating
		// throughout: every fault must leave them consistent too.
		Twin: true, Methods: true, ReportedEvery: 5 * time.Second, MethodDelay: 2 * time.Millisecond,
		MethodRate: 10, MethodNoAnswer: 0.05, MethodOffline: 0.05, DesiredRate: 5,
	}
	var out strings.Builder
	rep, err := sim.Run(ctx, cfg, sim.Env{API: api, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteText(&out)
	t.Log(out.String())
	c := rep.Comparison
	if !rep.OK() || c.Missing != 0 || c.OutOfOrder != 0 {
		t.Errorf("the hub's reports do not match the simulation: missing %d, out of order %d, duplicated %d, wrong code %d, unexpected %d, renewal marks off by %d",
			c.Missing, c.OutOfOrder, c.Duplicated, c.WrongCode, c.Unexpected, c.RenewalsUnpairedDiff)
	}
	// Every fault was injected and attributed to the code it must produce.
	want := map[string]string{
		"drop": "404104", "storm": "404104", "silence": "404104", "takeover": "400027",
		"expired": "401003", "wrongkey": "401003", "disabled": "401003", "slow": "",
	}
	for cause, code := range want {
		found := false
		for _, cr := range c.Causes {
			if cr.Cause == cause && cr.Result == code && cr.Expected > 0 {
				found = true
				if cr.Matched != cr.Expected {
					t.Errorf("%s: %d of %d %s %s %s matched", cause, cr.Matched, cr.Expected, cr.Source, cr.Type, code)
				}
			}
		}
		if !found {
			t.Errorf("no %s expectation with ResultType %q: the fault did not happen", cause, code)
		}
	}
	if c.RenewalsExpected == 0 || rep.Stats.Renewals == 0 {
		t.Errorf("no renewal reconnects in 20 s with 14 s tokens")
	}
	if rep.Stats.TelemetryAcked == 0 {
		t.Errorf("no telemetry acknowledged")
	}
	if rep.Twins == nil || !rep.Twins.OK() {
		t.Errorf("twins and methods: %v", rep.Twins)
	} else if rep.Twins.Desired.RequiredReceived == 0 || rep.Twins.Methods.Outcomes[sim.OutcomeOK] == 0 {
		t.Errorf("no desired pushes or answered calls: %+v %+v", rep.Twins.Desired, rep.Twins.Methods.Outcomes)
	}
}
