package sim

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
	"github.com/tether-hub/tether/internal/insight"
)

// ScenarioReport compares the hub's diagnoses and incidents with what the
// run's scenarios injected.
type ScenarioReport struct {
	// Causes are the per-cause figures, in the order of the scenarios.
	Causes []CauseScore `json:"causes"`
	// Healthy devices (no scenario) and how many of them the hub named a
	// fault for (a non-benign first verdict).
	Healthy        int     `json:"healthy"`
	HealthyFaulted int     `json:"healthyFaulted"`
	HealthyRate    float64 `json:"healthyFaultRate"`
	// Examples are a few devices whose diagnosis did not match.
	Examples []ScenarioMiss `json:"examples,omitempty"`
	// Incident is the check of the mass-drop incident (mass-drop runs).
	Incident  *IncidentCheck     `json:"incident,omitempty"`
	Incidents []insight.Incident `json:"incidents"`
	Errors    int                `json:"errors"`
	Notes     []string           `json:"notes,omitempty"`
}

// CauseScore is one cause's precision and recall over the run's devices.
type CauseScore struct {
	Scenario Scenario `json:"scenario"`
	Cause    string   `json:"cause"`
	// Injected devices, NamedFirst of them whose first verdict is Cause:
	// Recall = NamedFirst / Injected.
	Injected   int     `json:"injected"`
	NamedFirst int     `json:"namedFirst"`
	Recall     float64 `json:"recall"`
	// NamedAll is every device whose first verdict is Cause: Precision =
	// NamedFirst / NamedAll.
	NamedAll  int     `json:"namedAll"`
	Precision float64 `json:"precision"`
	// Instead counts what the injected devices got first otherwise ("" for
	// no verdict).
	Instead map[string]int `json:"instead,omitempty"`
}

// ScenarioMiss is one device whose diagnosis did not name its scenario.
type ScenarioMiss struct {
	Device   string   `json:"device"`
	Scenario Scenario `json:"scenario,omitempty"`
	Got      string   `json:"got"`
	Summary  string   `json:"summary"`
}

// IncidentCheck is the mass-drop incident against the drop.
type IncidentCheck struct {
	Found bool `json:"found"`
	// Incidents opened during the run (one is right).
	Opened int `json:"opened"`
	// DetectedAfter is from the drop to the incident's detection;
	// AnnouncedWithin10s whether it was detected within 10 s.
	DetectedAfterS     float64 `json:"detectedAfterSeconds"`
	AnnouncedWithin10s bool    `json:"announcedWithin10s"`
	Devices            int     `json:"devices"`
	Dropped            int     `json:"dropped"`
	SourcePrefix       string  `json:"sourcePrefix"`
	SourceShare        float64 `json:"sourceShare"`
	Closed             bool    `json:"closed"`
	Recovered          int     `json:"recovered"`
	Summary            string  `json:"summary"`
	OK                 bool    `json:"ok"`
}

// OK reports whether the scenarios met issue 13's bar: ≥ 95 % recall per
// cause, < 2 % of healthy devices named faulty, the incident right.
func (r *ScenarioReport) OK() bool {
	if r == nil {
		return true
	}
	for _, c := range r.Causes {
		if c.Cause != "" && c.Recall < 0.95 {
			return false
		}
	}
	return r.HealthyRate < 0.02 && (r.Incident == nil || r.Incident.OK)
}

// massDropAt is when the mass-drop scenario drops its devices (run offset).
func massDropAt(c *Config) time.Duration {
	return time.Duration(float64(c.Devices)/c.Ramp*float64(time.Second)) + 30*time.Second
}

// CheckScenarios waits until the hub's insight engine has read the run,
// diagnoses every device over the run's window and compares.
func CheckScenarios(ctx context.Context, api *hubclient.Client, cfg *Config, start time.Time) (*ScenarioReport, error) {
	rep := &ScenarioReport{}
	since := start.Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	diagnose := func(id string) (insight.Diagnosis, error) {
		var d insight.Diagnosis
		err := api.DoJSON(ctx, "GET", "/api/v1/devices/"+url.PathEscape(id)+"/diagnosis?since="+url.QueryEscape(since), nil, &d)
		return d, err
	}
	// The engine reads the journal a moment behind: wait until it reports
	// nothing pending twice in a row.
	for calm := 0; calm < 2; {
		d, err := diagnose(cfg.DeviceID(0))
		if err != nil {
			return nil, fmt.Errorf("diagnosis: %w", err)
		}
		if d.PendingEvents == 0 {
			calm++
		} else {
			calm = 0
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	n := cfg.Devices
	first := make([]string, n)
	problem := make([]bool, n)
	summaries := make([]string, n)
	var mu sync.Mutex
	err := hubclient.ForEach(ctx, n, 16, func(i int) error {
		d, err := diagnose(cfg.DeviceID(i))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			rep.Errors++
			first[i] = "error"
			summaries[i] = err.Error()
			return nil
		}
		if len(d.Verdicts) > 0 {
			first[i] = d.Verdicts[0].Cause
		}
		problem[i] = d.Status == insight.StatusProblem
		summaries[i] = d.Summary
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	named := map[string]int{}
	for i := range n {
		named[first[i]]++
	}
	scores := map[Scenario]*CauseScore{}
	for _, t := range cfg.Scenarios {
		scores[t.Scenario] = &CauseScore{Scenario: t.Scenario, Cause: t.Scenario.ExpectedCause(), Instead: map[string]int{}}
	}
	assigned := ScenarioAssignment(cfg)
	for i := range n {
		sc := assigned[i]
		if sc == "" {
			rep.Healthy++
			if problem[i] {
				rep.HealthyFaulted++
				rep.miss(cfg.DeviceID(i), "", first[i], summaries[i])
			}
			continue
		}
		s := scores[sc]
		s.Injected++
		switch {
		case s.Cause == "":
			// mass-drop devices: one drop each, no cause expected.
			if problem[i] {
				s.Instead[first[i]]++
				rep.miss(cfg.DeviceID(i), sc, first[i], summaries[i])
			}
		case first[i] == s.Cause:
			s.NamedFirst++
		default:
			s.Instead[first[i]]++
			rep.miss(cfg.DeviceID(i), sc, first[i], summaries[i])
		}
	}
	// Precision per cause: of the devices named with it first, those
	// whose scenario expects it (short-token and expired-token share one).
	correct := map[string]int{}
	for _, s := range scores {
		correct[s.Cause] += s.NamedFirst
	}
	for _, t := range cfg.Scenarios {
		s := scores[t.Scenario]
		if s.Cause != "" {
			s.NamedAll = named[s.Cause]
			s.Recall = ratio(s.NamedFirst, s.Injected)
			s.Precision = ratio(correct[s.Cause], s.NamedAll)
		}
		if len(s.Instead) == 0 {
			s.Instead = nil
		}
		rep.Causes = append(rep.Causes, *s)
	}
	rep.HealthyRate = ratio(rep.HealthyFaulted, rep.Healthy)

	var incs struct {
		Incidents []insight.Incident `json:"incidents"`
	}
	if err := api.DoJSON(ctx, "GET", "/api/v1/insights/incidents?limit=0", nil, &incs); err != nil {
		return nil, fmt.Errorf("incidents: %w", err)
	}
	for _, inc := range incs.Incidents {
		if !inc.Start.Before(start.Add(-time.Second)) {
			rep.Incidents = append(rep.Incidents, inc)
		}
	}
	if rep.Incidents == nil {
		rep.Incidents = []insight.Incident{}
	}
	if cfg.Scenarios.Has(ScenarioMassDrop) {
		rep.Incident = checkIncident(cfg, start, scores[ScenarioMassDrop].Injected, rep.Incidents)
	}
	if cfg.Scenarios.Has(ScenarioHubSide) {
		rep.Notes = append(rep.Notes, "hub-side: the devices only show it if the hub was restarted during the run (bench/cmd/diagbench does)")
	}
	return rep, nil
}

func (r *ScenarioReport) miss(id string, sc Scenario, got, summary string) {
	if len(r.Examples) < 20 {
		r.Examples = append(r.Examples, ScenarioMiss{Device: id, Scenario: sc, Got: got, Summary: summary})
	}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(float64(a)/float64(b)*10000) / 10000
}

// checkIncident finds the mass drop's incident: one opened at the drop,
// detected within 10 s, grouped by the dropped devices' source, closed
// once they were back.
func checkIncident(cfg *Config, start time.Time, dropped int, incs []insight.Incident) *IncidentCheck {
	drop := start.Add(massDropAt(cfg))
	c := &IncidentCheck{Dropped: dropped, Opened: len(incs)}
	var found *insight.Incident
	for i := range incs {
		if d := incs[i].Start.Sub(drop); d > -5*time.Second && d < 15*time.Second {
			found = &incs[i]
			break
		}
	}
	if found == nil {
		return c
	}
	c.Found = true
	c.DetectedAfterS = math.Round(found.DetectedAt.Sub(drop).Seconds()*100) / 100
	c.AnnouncedWithin10s = found.DetectedAt.Sub(drop) <= 10*time.Second
	c.Devices, c.Recovered, c.Summary = found.Devices, found.Recovered, found.Summary
	c.Closed = found.State == insight.IncidentClosed
	for _, g := range found.Groups {
		if g.Dimension == insight.DimSourcePrefix && len(g.Values) > 0 {
			c.SourcePrefix, c.SourceShare = g.Values[0].Value, g.Values[0].Share
		}
	}
	c.OK = c.Opened == 1 && c.AnnouncedWithin10s && c.Closed && c.SourcePrefix == "127.0.5.XXX" && c.SourceShare >= 0.95 &&
		math.Abs(float64(c.Devices-dropped)) <= 0.05*float64(dropped)
	return c
}

// ScenarioLines renders the report for people.
func (r *ScenarioReport) Lines() []string {
	var out []string
	out = append(out, "Scenarios (diagnose's first verdict per device, against what was injected):")
	for _, c := range r.Causes {
		if c.Cause == "" {
			out = append(out, fmt.Sprintf("  %-20s %4d devices  (no cause expected; %d named a fault)", c.Scenario, c.Injected, sumCounts(c.Instead)))
			continue
		}
		line := fmt.Sprintf("  %-20s %4d injected  recall %5.1f %% (%d)  precision %5.1f %% (%d named)", c.Scenario, c.Injected,
			c.Recall*100, c.NamedFirst, c.Precision*100, c.NamedAll)
		if len(c.Instead) > 0 {
			line += "  otherwise: " + instead(c.Instead)
		}
		out = append(out, line)
	}
	out = append(out, fmt.Sprintf("  %-20s %4d devices  named a fault: %d (%.2f %%)", "healthy", r.Healthy, r.HealthyFaulted, r.HealthyRate*100))
	if c := r.Incident; c != nil {
		if !c.Found {
			out = append(out, fmt.Sprintf("  mass-drop incident: NOT FOUND (%d incidents during the run)", c.Opened))
		} else {
			out = append(out, fmt.Sprintf("  mass-drop incident: detected %.1f s after the drop, %d of %d devices, %s at %.0f %%, closed=%v with %d back, %d incident(s) in the run",
				c.DetectedAfterS, c.Devices, c.Dropped, c.SourcePrefix, c.SourceShare*100, c.Closed, c.Recovered, c.Opened))
			out = append(out, "    "+c.Summary)
		}
	} else if len(r.Incidents) > 0 {
		for _, inc := range r.Incidents {
			out = append(out, "  incident: "+inc.Summary)
		}
	}
	for _, e := range r.Examples {
		got := e.Got
		if got == "" {
			got = "(none)"
		}
		out = append(out, fmt.Sprintf("    e.g. %s (%s): %s — %s", e.Device, orHealthy(e.Scenario), got, e.Summary))
	}
	if r.Errors > 0 {
		out = append(out, fmt.Sprintf("  %d diagnoses failed", r.Errors))
	}
	out = append(out, r.Notes...)
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	out = append(out, "  "+verdict+": ≥ 95 % recall per cause, < 2 % of healthy devices named faulty, one incident for the mass drop")
	return out
}

func orHealthy(s Scenario) string {
	if s == "" {
		return "healthy"
	}
	return string(s)
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func instead(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	return fmt.Sprint(parts)
}
