package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tether-hub/tether/bench/internal/procstat"
)

// variant is one cost configuration.
type variant struct {
	name        string
	metric, log int
}

type costResult struct {
	variant
	cpuPct        float64 // of one core
	evals, failed uint64
	late          int // rules not evaluated in the last 2 s at the end
	measured      time.Duration
}

// metricTemplates never fire (thresholds out of reach) but do the full
// work: query, aggregate, compare, update state.
var metricTemplates = []string{
	"metric: {name: connectedDeviceCount, aggregation: Average}\n    operator: LessThan\n    threshold: -1",
	"metric: {name: connectedDeviceCount, aggregation: Minimum}\n    operator: LessThan\n    threshold: -1",
	"metric: {name: totalDeviceCount, aggregation: Maximum}\n    operator: GreaterThan\n    threshold: 1e9",
	"metric: {name: enabledDeviceCount, aggregation: Average}\n    operator: LessThan\n    threshold: -1",
	"metric: {name: deviceConnects, aggregation: Total, splitBy: [ResultType]}\n    operator: GreaterThan\n    threshold: 1e9",
	"metric: {name: deviceDisconnects, aggregation: Total, filter: {ResultType: [\"404104\"]}, splitBy: [Protocol]}\n    operator: GreaterThan\n    threshold: 1e9",
	"metric: {name: deviceAuthFailures, aggregation: Total, splitBy: [Reason]}\n    operator: GreaterThan\n    threshold: 1e9",
	"metric: {name: journalConsumerLag, aggregation: Maximum, splitBy: [Consumer]}\n    operator: GreaterThan\n    threshold: 1e9",
}

var windows = []string{"1s", "10s", "1m", "5m"}

func rulesYAML(v variant) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range v.metric {
		fmt.Fprintf(&b, "  - name: m%04d\n    %s\n    frequency: 1s\n    window: %s\n",
			i, metricTemplates[i%len(metricTemplates)], windows[(i/len(metricTemplates))%len(windows)])
	}
	for i := range v.log {
		fmt.Fprintf(&b, `  - name: l%04d
    log:
      query: AzureDiagnostics | where Category == "Connections" and ResultType == "404104" | summarize n = count() by ResultType
      measure: n
      aggregation: Total
    operator: GreaterThan
    threshold: 1e9
    frequency: 1s
    window: %s
`, i, windows[1+i%3])
	}
	return b.String()
}

func costRun(ctx context.Context, c config, v variant) (costResult, error) {
	res := costResult{variant: v}
	h, err := startHub(ctx, rulesYAML(v))
	if err != nil {
		return res, err
	}
	defer h.stop()
	clients, err := h.connect(ctx, ids("cost", c.devices))
	if err != nil {
		return res, err
	}
	defer func() {
		for _, cl := range clients {
			cl.Disconnect(0)
		}
	}()
	if err := sleep(ctx, c.warmup); err != nil {
		return res, err
	}
	evals0, _ := counts(h)
	cpu0, err := procstat.CPU(os.Getpid())
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	if err := sleep(ctx, c.measure); err != nil {
		return res, err
	}
	cpu1, _ := procstat.CPU(os.Getpid())
	res.measured = time.Since(t0)
	evals1, failed := counts(h)
	res.cpuPct = 100 * float64(time.Duration(cpu1-cpu0)*procstat.TickDuration) / float64(res.measured)
	res.evals, res.failed = evals1-evals0, failed
	now := time.Now()
	for _, r := range h.Alerts().Rules() {
		if r.LastEvaluated == nil || now.Sub(*r.LastEvaluated) > 2*time.Second {
			res.late++
		}
	}
	return res, nil
}

func counts(h *benchHub) (evals, failed uint64) {
	for _, r := range h.Alerts().Rules() {
		evals += r.EvalCount
		failed += r.Failures
	}
	return evals, failed
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
