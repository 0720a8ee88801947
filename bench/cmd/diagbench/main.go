// Command diagbench is issue 13's acceptance run: for each simulator
// scenario (internal/sim/scenario.go) a fresh `tether serve --dev`, 2,000
// simulated devices of which a few hundred carry the scenario's trouble,
// then every device's diagnosis against what was injected: recall and
// precision per cause, the share of healthy devices named faulty, and for
// the mass drop the incident (one, within 10 s, grouped by the source,
// closed once the devices are back). For hub-side it kills the hub in the
// middle of the run and starts it again on the same data dir.
//
// It prints one block per scenario as it goes and a markdown table at the
// end (-out writes it to a file too). Every run is bounded by its
// duration plus -slack; the hubs are stopped whatever happens.
//
//	go run ./bench/cmd/diagbench -duration 4m                      # every scenario (~70 min)
//	go run ./bench/cmd/diagbench -scenarios mass-drop,duplicate-identity -devices 2000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/hubproc"
	"github.com/tether-hub/tether/internal/sim"
)

func main() {
	var (
		devices   = flag.Int("devices", 2000, "simulated devices per run")
		count     = flag.Int("count", 300, "devices carrying the scenario (mass-drop: 500; hub-side: all)")
		duration  = flag.Duration("duration", 4*time.Minute, "length of each run")
		scenarios = flag.String("scenarios", "", "comma-separated scenarios (default: all)")
		bin       = flag.String("bin", "", "tether binary (default: build ./cmd/tether)")
		work      = flag.String("work", "", "work directory (default: a temporary one, removed)")
		out       = flag.String("out", "", "also write the markdown table here")
		slack     = flag.Duration("slack", 8*time.Minute, "time a run may take beyond its duration")
		seed      = flag.Uint64("seed", 1, "simulator seed")
	)
	flag.Parse()
	list := sim.AllScenarios
	if *scenarios != "" {
		list = nil
		terms, err := sim.ParseScenarios(*scenarios)
		if err != nil {
			log.Fatal(err)
		}
		for _, t := range terms {
			list = append(list, t.Scenario)
		}
	}
	dir := *work
	if dir == "" {
		d, err := os.MkdirTemp("", "diagbench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if *bin == "" {
		b, err := hubproc.Build(".", dir)
		if err != nil {
			log.Fatal(err)
		}
		*bin = b
	}
	var rows []string
	started := time.Now()
	fmt.Printf("diagbench: %d devices, %s per run, %d CPUs, load %s\n", *devices, *duration, runtime.NumCPU(), loadAvg())
	for _, sc := range list {
		n := *count
		switch sc {
		case sim.ScenarioMassDrop:
			n = 500
		case sim.ScenarioHubSide:
			n = *devices
		}
		row, err := runOne(dir, *bin, sc, *devices, n, *duration, *slack, *seed)
		if err != nil {
			log.Printf("%s: %v", sc, err)
			row = fmt.Sprintf("| %s | %d | run failed: %s | | | | | |", sc, n, strings.ReplaceAll(err.Error(), "|", "/"))
		}
		rows = append(rows, row)
	}
	table := []string{
		"| scenario | injected | expected cause | recall | precision | healthy named faulty | incidents in the run | simulator's event check |",
		"|---|---:|---|---:|---:|---:|---|---|",
	}
	table = append(table, rows...)
	text := strings.Join(table, "\n") + "\n"
	fmt.Printf("\n%s\n(total %s, load %s)\n", text, time.Since(started).Round(time.Second), loadAvg())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// runOne runs one scenario against a fresh hub and returns its table row.
func runOne(dir, bin string, sc sim.Scenario, devices, n int, duration, slack time.Duration, seed uint64) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), duration+slack)
	defer cancel()
	data := filepath.Join(dir, string(sc))
	hub, err := hubproc.New(hubproc.Options{Bin: bin, DataDir: data})
	if err != nil {
		return "", err
	}
	if err := hub.Start(ctx); err != nil {
		return "", err
	}
	defer hub.Stop(20 * time.Second)
	api, err := hubclient.FromDevDir(ctx, data, "https://"+hub.HTTPSAddr, 30*time.Second)
	if err != nil {
		return "", err
	}
	ca, err := os.ReadFile(filepath.Join(data, "ca.pem"))
	if err != nil {
		return "", err
	}
	term := sim.ScenarioTerm{Scenario: sc, Count: n}
	cfg := sim.Config{
		Devices: devices, Duration: duration, Ramp: 500, Profile: "node", Telemetry: 30 * time.Second,
		Scenarios: sim.Scenarios{term}, Seed: seed,
		HubName: "localhost", MQTTAddr: hub.MQTTAddr, HTTPSAddr: hub.HTTPSAddr, CAPEM: ca, Settle: 30 * time.Second,
	}
	if sc == sim.ScenarioHubSide {
		// The hub dies a minute and a half in and comes back on the same
		// data dir: every device's session is recorded hub-restart.
		go func() {
			t := time.NewTimer(time.Duration(float64(devices)/cfg.Ramp*float64(time.Second)) + 90*time.Second)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			hub.Kill()
			time.Sleep(2 * time.Second)
			if err := hub.Start(ctx); err != nil {
				log.Printf("hub-side: restarting the hub: %v", err)
			}
		}()
	}
	t0 := time.Now()
	fmt.Printf("\n== %s: %d of %d devices, %s (load %s) ==\n", sc, n, devices, duration, loadAvg())
	rep, err := sim.Run(ctx, cfg, sim.Env{API: api, Out: os.Stdout})
	if err != nil {
		return "", err
	}
	sr := rep.Scenarios
	if sr == nil {
		return "", fmt.Errorf("no scenario check (%s)", strings.Join(rep.Notes, "; "))
	}
	for _, l := range sr.Lines() {
		fmt.Println(l)
	}
	fmt.Printf("(%s, load %s)\n", time.Since(t0).Round(time.Second), loadAvg())
	c := sr.Causes[0]
	cause, recall, precision := c.Cause, fmt.Sprintf("%.1f %%", c.Recall*100), fmt.Sprintf("%.1f %%", c.Precision*100)
	if cause == "" {
		cause, recall, precision = "(none: an incident)", "–", "–"
	}
	incidents := fmt.Sprint(len(sr.Incidents))
	if ic := sr.Incident; ic != nil {
		if ic.Found {
			incidents = fmt.Sprintf("%d; the drop's: detected after %.1f s, %d of %d devices, %s %.0f %%, closed %v with %d back",
				ic.Opened, ic.DetectedAfterS, ic.Devices, ic.Dropped, ic.SourcePrefix, ic.SourceShare*100, ic.Closed, ic.Recovered)
		} else {
			incidents = fmt.Sprintf("%d; the drop's NOT FOUND", ic.Opened)
		}
	}
	cmp := "match"
	if !rep.OK() {
		cm := rep.Comparison
		cmp = fmt.Sprintf("missing %d, unexpected %d, wrong code %d", cm.Missing, cm.Unexpected, cm.WrongCode)
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %d of %d (%.2f %%) | %s | %s |", sc, c.Injected, cause, recall, precision,
		sr.HealthyFaulted, sr.Healthy, sr.HealthyRate*100, incidents, cmp), nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
