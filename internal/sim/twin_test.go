package sim_test

import (
	"context"
	"io"
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

// simHub starts a dev hub in-process on loopback port 0 and returns a
// config pointing at it, and its API as the owner policy.
func simHub(t *testing.T, ctx context.Context) (sim.Config, *hubclient.Client) {
	t.Helper()
	return simHubLimited(t, ctx, throttle.Limits{})
}

// simHubLimited is simHub with the hub's throttles set to limits.
func simHubLimited(t *testing.T, ctx context.Context, limits throttle.Limits) (sim.Config, *hubclient.Client) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(app.Config{DataDir: dir, HubName: "localhost", Dev: true, MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
		Limits: limits}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		_ = a.Stop(sctx)
	})
	api, err := hubclient.FromDevDir(ctx, dir, "https://"+a.HTTPSAddr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(a.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return sim.Config{HubName: a.HubName(), MQTTAddr: a.MQTTAddr(), HTTPSAddr: a.HTTPSAddr(), CAPEM: ca, Settle: 30 * time.Second}, api
}

func runSim(t *testing.T, ctx context.Context, cfg sim.Config, api *hubclient.Client) *sim.Report {
	t.Helper()
	var out strings.Builder
	rep, err := sim.Run(ctx, cfg, sim.Env{API: api, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteText(&out)
	t.Log(out.String())
	if rep.Twins == nil {
		t.Fatal("no twin report")
	}
	for _, f := range rep.Twins.Failures {
		t.Errorf("twins and methods: %s", f)
	}
	c := rep.Comparison
	if !rep.OK() {
		t.Errorf("the run failed its check: missing %d, out of order %d, duplicated %d, wrong code %d, unexpected %d, renewal marks off by %d",
			c.Missing, c.OutOfOrder, c.Duplicated, c.WrongCode, c.Unexpected, c.RenewalsUnpairedDiff)
	}
	return rep
}

// expectRow sums the method expectation rows whose expectation is exp
// and whose reason contains why.
func expectRow(m sim.MethodReport, exp, why string) (calls, matched int) {
	for _, r := range m.Expect {
		if r.Expect == exp && strings.Contains(r.Why, why) {
			calls += r.Calls
			matched += r.Matched
		}
	}
	return calls, matched
}

// The Node profile across SAS renewals: the SDK sends no SUBSCRIBE after
// a renewal reconnect, so every desired push and method call after the
// first renewal reaches the device only because the hub kept the
// session's subscriptions (clean session 0). The service side calls
// methods (some to devices that never connect, some to a method no device
// handles) and updates desired properties throughout.
func TestSimTwinsNodeAcrossRenewals(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s simulation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg, api := simHub(t, ctx)
	cfg.Devices, cfg.Duration, cfg.Ramp, cfg.Profile = 30, 18*time.Second, 30, "node"
	cfg.TokenTTL = 10 * time.Second // renewals at 7.5 s and 15 s
	cfg.Twin, cfg.Methods, cfg.ReportedEvery, cfg.MethodDelay = true, true, 2*time.Second, 5*time.Millisecond
	cfg.MethodRate, cfg.MethodNoAnswer, cfg.MethodOffline, cfg.DesiredRate = 20, 0.1, 0.1, 10
	rep := runSim(t, ctx, cfg, api)
	tw := rep.Twins
	if rep.Stats.Renewals < int64(cfg.Devices) {
		t.Errorf("%d renewal reconnects; want at least one per device", rep.Stats.Renewals)
	}
	// Node GETs once per device (no GET after a reconnect) and reports at
	// start-up and every 2 s.
	if tw.Get.Sent != int64(cfg.Devices) || tw.Get.OK != tw.Get.Sent {
		t.Errorf("twin GETs: %d sent, %d answered; want one per device (%d)", tw.Get.Sent, tw.Get.OK, cfg.Devices)
	}
	if tw.Reported.OK < int64(3*cfg.Devices) || tw.Get.Latency.Count != tw.Get.OK {
		t.Errorf("reported patches: %d answered; want several per device", tw.Reported.OK)
	}
	d := tw.Desired
	if d.RequiredKept < 20 || d.ReceivedKept != d.RequiredKept || d.Missing != 0 {
		t.Errorf("desired pushes on subscriptions kept over a renewal: %d of %d received (missing overall %d); want ≥ 20, all",
			d.ReceivedKept, d.RequiredKept, d.Missing)
	}
	for _, c := range []struct{ exp, why string }{
		{sim.OutcomeOK, "kept from an earlier session"},
		{sim.OutcomeNotOnline, "never connects"},
	} {
		calls, matched := expectRow(tw.Methods, c.exp, c.why)
		if calls == 0 || matched != calls {
			t.Errorf("calls expected %s (%s): %d of %d as expected; want some, all", c.exp, c.why, matched, calls)
		}
	}
	// Unhandled calls wait the whole 5 s response timeout, often across a
	// renewal: they must end in 504101 (or, across one, 404103).
	if calls, matched := expectRow(tw.Methods, sim.OutcomeTimeout, "no handler"); matched != calls || tw.Methods.Outcomes[sim.OutcomeTimeout] == 0 {
		t.Errorf("unhandled calls: %d of %d as expected, %d ended in 504101", matched, calls, tw.Methods.Outcomes[sim.OutcomeTimeout])
	}
	if tw.Methods.Latency.Count == 0 || tw.Methods.Latency.P50ms <= 0 {
		t.Errorf("no method round-trip latency: %+v", tw.Methods.Latency)
	}
}

// The C profile subscribes again and GETs the twin again after every
// reconnect; devices drop and reconnect at random, and calls that cross a
// drop may come back 200, 404103 or 504101, but nothing may go to the
// wrong device and no request may stay unanswered.
func TestSimTwinsCWithDrops(t *testing.T) {
	if testing.Short() {
		t.Skip("15 s simulation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg, api := simHub(t, ctx)
	faults, err := sim.ParseFaults("drop=30%/min")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Devices, cfg.Duration, cfg.Ramp, cfg.Profile, cfg.Faults = 30, 15*time.Second, 30, "c", faults
	cfg.TokenTTL = 10 * time.Second
	cfg.Twin, cfg.Methods, cfg.ReportedEvery = true, true, 3*time.Second
	cfg.MethodRate, cfg.MethodNoAnswer, cfg.DesiredRate = 20, 0.1, 10
	rep := runSim(t, ctx, cfg, api)
	tw := rep.Twins
	// One GET per connect: C reads the whole twin again after each.
	if tw.Get.Sent < rep.Stats.Connects-2 || tw.Get.Sent > rep.Stats.Connects {
		t.Errorf("twin GETs %d for %d connects; want one per connect", tw.Get.Sent, rep.Stats.Connects)
	}
	if rep.Stats.Faults["drop"] == 0 {
		t.Errorf("no drops happened")
	}
	if calls, matched := expectRow(tw.Methods, sim.OutcomeOK, "ready throughout"); calls == 0 || matched != calls {
		t.Errorf("echo calls to ready devices: %d of %d answered 200", matched, calls)
	}
	if tw.Desired.Required == 0 || tw.Desired.Missing != 0 {
		t.Errorf("desired: %d required, %d missing", tw.Desired.Required, tw.Desired.Missing)
	}
}

// A run split over a worker: the worker's devices send their twin records
// to the parent as JSON at the end, and the check covers both shares. The
// worker runs in this process, over a pipe, as a re-executed binary would.
func TestSimTwinsSplitOverWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s simulation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg, api := simHub(t, ctx)
	cfg.Devices, cfg.PerProcess, cfg.Duration, cfg.Ramp, cfg.Profile = 20, 10, 9*time.Second, 20, "python"
	cfg.Twin, cfg.Methods, cfg.ReportedEvery = true, true, 2*time.Second
	cfg.MethodRate, cfg.DesiredRate = 20, 10
	spawn := func(ctx context.Context, spec sim.WorkerSpec) (sim.Worker, error) {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := sim.RunWorker(ctx, spec, api, pw)
			pw.CloseWithError(err)
			done <- err
		}()
		return sim.Worker{Out: pr, Wait: func() error { return <-done }}, nil
	}
	var out strings.Builder
	rep, err := sim.Run(ctx, cfg, sim.Env{API: api, Out: &out, Spawn: spawn})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteText(&out)
	t.Log(out.String())
	if rep.Processes != 2 || rep.Twins == nil || !rep.OK() {
		t.Fatalf("processes %d, OK %v, twins %+v", rep.Processes, rep.OK(), rep.Twins)
	}
	tw := rep.Twins
	if tw.Get.OK != 20 || tw.Methods.Received == 0 || tw.Desired.RequiredReceived == 0 {
		t.Errorf("GETs %d (want 20, both shares), calls received %d, pushes %d", tw.Get.OK, tw.Methods.Received, tw.Desired.RequiredReceived)
	}
	workerCalls := 0
	for _, r := range tw.Methods.Expect {
		if r.Expect == sim.OutcomeOK {
			workerCalls += r.Calls
		}
	}
	if workerCalls == 0 {
		t.Errorf("no calls expected to succeed: %+v", tw.Methods.Expect)
	}
}

// The .NET profile keeps its connection until the hub closes it at token
// expiry and then subscribes again on the new one; some devices are
// disabled for a while (the hub closes them and refuses them). Calls and
// pushes around those closes may go either way; nothing may be lost on a
// ready device or go to the wrong one.
func TestSimTwinsCSharpExpiryAndDisable(t *testing.T) {
	if testing.Short() {
		t.Skip("16 s simulation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg, api := simHub(t, ctx)
	faults, err := sim.ParseFaults("disabled=10%")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Devices, cfg.Duration, cfg.Ramp, cfg.Profile, cfg.Faults = 30, 16*time.Second, 30, "csharp", faults
	cfg.TokenTTL, cfg.DisableFor = 6*time.Second, 3*time.Second
	cfg.Twin, cfg.Methods, cfg.ReportedEvery = true, true, 2*time.Second
	cfg.MethodRate, cfg.MethodNoAnswer, cfg.DesiredRate = 25, 0.05, 10
	rep := runSim(t, ctx, cfg, api)
	tw := rep.Twins
	if rep.Stats.Faults["disabled"] == 0 || rep.Stats.Renewals == 0 {
		t.Errorf("faults %v, renewals %d: the hub closed nothing", rep.Stats.Faults, rep.Stats.Renewals)
	}
	if calls, matched := expectRow(tw.Methods, sim.OutcomeOK, "ready throughout"); calls == 0 || matched != calls {
		t.Errorf("echo calls to ready devices: %d of %d answered 200", matched, calls)
	}
	if tw.Desired.Required == 0 || tw.Desired.Missing != 0 {
		t.Errorf("desired: %d required, %d missing", tw.Desired.Required, tw.Desired.Missing)
	}
}
