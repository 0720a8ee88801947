// Command alertbench measures Tether's alert engine in a hub run in this
// process (internal/app, loopback ports, a temporary data dir):
//
//  1. Cost: the hub's CPU with -rules metric rules evaluated every second,
//     against the same hub with no rules, side by side and alternating
//     (-reps pairs), each measured over -measure after -warmup, with
//     -devices devices connected. Rules mix the catalog's metrics,
//     aggregations, windows of 1 s to 5 min and dimension splits; none
//     fires. -log-rules adds a third variant with that many KQL log rules.
//  2. Latency: a rule connectedDeviceCount < 90 (every 1 s over 1 s,
//     autoResolve after 1) and a webhook in this process; -trials times,
//     20 of 100 connected devices disconnect, and the test takes the time
//     from the crossing (the 11th disconnect seen on the journal) and from
//     the first close to the webhook's Fired, then reconnects them and
//     takes the time to Resolved.
//
// CPU is this process's utime+stime (/proc/self/stat): the hub and the
// test's idle MQTT clients. Everything is bounded by -timeout.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"
)

type config struct {
	rules, logRules, devices, reps, trials int
	measure, warmup, timeout               time.Duration
	out                                    string
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	var c config
	flag.IntVar(&c.rules, "rules", 1000, "metric rules evaluated every second in the cost run")
	flag.IntVar(&c.logRules, "log-rules", 100, "KQL log rules evaluated every second in a third cost variant (0: skip)")
	flag.IntVar(&c.devices, "devices", 100, "devices connected during the cost runs")
	flag.IntVar(&c.reps, "reps", 2, "alternating cost runs per variant")
	flag.DurationVar(&c.measure, "measure", 20*time.Second, "measured time per cost run")
	flag.DurationVar(&c.warmup, "warmup", 5*time.Second, "time before measuring")
	flag.IntVar(&c.trials, "trials", 20, "drop/reconnect trials in the latency run (0: skip)")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "hard cap for the whole run")
	flag.StringVar(&c.out, "out", "", "report file (default bench/results/<date>-alerts.md)")
	flag.Parse()
	if c.out == "" {
		c.out = filepath.Join("bench", "results", time.Now().UTC().Format("2006-01-02")+"-alerts.md")
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	go func() {
		<-ctx.Done()
		time.Sleep(30 * time.Second) // the runs stop on ctx; this is the backstop
		log.Fatal("alertbench: timeout")
	}()

	var rep report
	rep.config = c
	if c.reps > 0 {
		variants := []variant{{name: "no rules"}, {name: fmt.Sprintf("%d metric rules", c.rules), metric: c.rules}}
		if c.logRules > 0 {
			variants = append(variants, variant{name: fmt.Sprintf("%d log rules", c.logRules), log: c.logRules})
		}
		for r := range c.reps {
			for _, v := range variants {
				res, err := costRun(ctx, c, v)
				if err != nil {
					log.Fatalf("cost run %q: %v", v.name, err)
				}
				log.Printf("rep %d %-18s CPU %5.1f%%  evaluations %d  failed %d  late %d", r+1, v.name, res.cpuPct, res.evals, res.failed, res.late)
				rep.cost = append(rep.cost, res)
			}
		}
	}
	if c.trials > 0 {
		lat, err := latencyRun(ctx, c)
		if err != nil {
			log.Fatalf("latency run: %v", err)
		}
		rep.latency = lat
	}
	text := rep.markdown()
	fmt.Print(text)
	if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err == nil {
		if err := os.WriteFile(c.out, []byte(text), 0o644); err != nil {
			log.Print(err)
		} else {
			log.Printf("report written to %s", c.out)
		}
	}
}
