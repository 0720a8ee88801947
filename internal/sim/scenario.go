package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/hubclient"
)

// Scenarios reproduce, on chosen devices, the causes `tether diagnose`
// recognises (issue 13), so a run can check that the hub names them: the
// devices a scenario picks behave the way devices with that trouble do,
// the others stay healthy, and at the end CheckScenarios compares every
// device's diagnosis (and the incidents) with what was injected.
//
//	duplicate-identity  a second client with the device's credentials, from another address (127.0.7.x);
//	                    both SDKs reconnect whenever replaced
//	token-renewal       tokens of 4 minutes: the SDK renews as it does (benign, expected first)
//	short-token         tokens of 60 s (expected: expired-token, short-lived)
//	expired-token       the device's clock jumps 2 h back: after a restart every new token has
//	                    expired an hour before it arrives; the SDK keeps retrying
//	wrong-key           the simulator rotates the device's primary key in the registry; the device
//	                    restarts and keeps signing with the old one
//	disabled-device     the simulator disables the device for good; the SDK keeps retrying
//	idle-timeout        a NAT on the path resets connections idle for 20 s (keep-alive 180 s, no telemetry)
//	unstable-network    connections reset at random, about twice a minute
//	hub-side            every device: the hub is restarted during the run (by whoever runs the hub:
//	                    bench/cmd/diagbench does; tether sim alone cannot)
//	flapping            the application closes and reopens its client every 15–45 s
//	mass-drop           the devices (from 127.0.5.x) all lose their network at once for 20 s;
//	                    expected: one incident grouped by that source, closed when they are back
//
// A term is "name", "name=COUNT" or "name=PERCENT%"; the default count
// is 300 devices (mass-drop 500, hub-side all). Scenarios pick different
// devices (each its own spread), so several can run at once.
type Scenario string

// The scenarios.
const (
	ScenarioDuplicate  Scenario = "duplicate-identity"
	ScenarioRenewal    Scenario = "token-renewal"
	ScenarioShortToken Scenario = "short-token"
	ScenarioExpired    Scenario = "expired-token"
	ScenarioWrongKey   Scenario = "wrong-key"
	ScenarioDisabled   Scenario = "disabled-device"
	ScenarioIdle       Scenario = "idle-timeout"
	ScenarioUnstable   Scenario = "unstable-network"
	ScenarioHubSide    Scenario = "hub-side"
	ScenarioFlapping   Scenario = "flapping"
	ScenarioMassDrop   Scenario = "mass-drop"
)

// AllScenarios lists them in the order of the doc.
var AllScenarios = []Scenario{
	ScenarioDuplicate, ScenarioRenewal, ScenarioShortToken, ScenarioExpired, ScenarioWrongKey, ScenarioDisabled,
	ScenarioIdle, ScenarioUnstable, ScenarioHubSide, ScenarioFlapping, ScenarioMassDrop,
}

// ExpectedCause is the diagnosis cause a scenario's devices should get
// first; "" for mass-drop (an incident, not a device's cause).
func (s Scenario) ExpectedCause() string {
	switch s {
	case ScenarioShortToken:
		return "expired-token"
	case ScenarioMassDrop:
		return ""
	}
	return string(s)
}

// Scenario timings.
const (
	scenarioTTL      = 4 * time.Minute  // token-renewal
	shortTokenTTL    = 60 * time.Second // short-token
	clockSkew        = 2 * time.Hour    // expired-token
	natIdleTimeout   = 20 * time.Second // idle-timeout
	unstableRate     = 2.0              // unstable-network: drops per device per minute
	flapMin, flapMax = 15 * time.Second, 45 * time.Second
	massDropOffline  = 20 * time.Second
)

// ScenarioTerm is one parsed --scenario term.
type ScenarioTerm struct {
	Scenario Scenario `json:"scenario"`
	Count    int      `json:"count,omitempty"`
	Fraction float64  `json:"fraction,omitempty"`
}

func (t ScenarioTerm) String() string {
	switch {
	case t.Fraction > 0:
		return fmt.Sprintf("%s=%s%%", t.Scenario, trimFloat(t.Fraction*100))
	case t.Count > 0:
		return fmt.Sprintf("%s=%d", t.Scenario, t.Count)
	}
	return string(t.Scenario)
}

// Scenarios is a parsed --scenario list.
type Scenarios []ScenarioTerm

func (ss Scenarios) String() string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// Has reports whether s is in the list.
func (ss Scenarios) Has(s Scenario) bool {
	return slices.ContainsFunc(ss, func(t ScenarioTerm) bool { return t.Scenario == s })
}

// ParseScenarios reads "duplicate-identity=300,idle-timeout=10%"; every
// problem is reported at once.
func ParseScenarios(s string) (Scenarios, error) {
	var out Scenarios
	var errs []error
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		name, val, hasVal := strings.Cut(term, "=")
		sc := Scenario(strings.ToLower(strings.TrimSpace(name)))
		if !slices.Contains(AllScenarios, sc) {
			var names []string
			for _, a := range AllScenarios {
				names = append(names, string(a))
			}
			errs = append(errs, fmt.Errorf("unknown scenario %q: use %s", name, strings.Join(names, ", ")))
			continue
		}
		if out.Has(sc) {
			errs = append(errs, fmt.Errorf("scenario %s given twice", sc))
			continue
		}
		t := ScenarioTerm{Scenario: sc}
		if hasVal {
			val = strings.TrimSpace(val)
			if p, ok := strings.CutSuffix(val, "%"); ok {
				f, err := strconv.ParseFloat(p, 64)
				if err != nil || f <= 0 || f > 100 {
					errs = append(errs, fmt.Errorf("scenario %s=%s: a percentage must be in (0, 100]", sc, val))
					continue
				}
				t.Fraction = f / 100
			} else {
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 {
					errs = append(errs, fmt.Errorf("scenario %s=%s: give a device count ≥ 1 or a percentage", sc, val))
					continue
				}
				t.Count = n
			}
		}
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

// count is how many of n devices the term picks.
func (t ScenarioTerm) count(n int) int {
	switch {
	case t.Count > 0:
		return min(t.Count, n)
	case t.Fraction > 0:
		return max(1, int(t.Fraction*float64(n)+0.5))
	case t.Scenario == ScenarioHubSide:
		return n
	case t.Scenario == ScenarioMassDrop:
		return min(500, n)
	}
	return min(300, n)
}

// ScenarioAssignment gives every device of cfg its scenario ("" for a
// healthy one): the devices are shuffled with the run's seed and dealt to
// the scenarios in order, so the scenarios never share a device, each gets
// its count, and every process of a run agrees without talking. hub-side
// takes every device the others leave.
func ScenarioAssignment(cfg *Config) []Scenario {
	out := make([]Scenario, cfg.Devices)
	if len(cfg.Scenarios) == 0 {
		return out
	}
	perm := rand.New(rand.NewPCG(cfg.Seed, 0x5ce7a110)).Perm(cfg.Devices)
	k := 0
	for _, t := range cfg.Scenarios {
		n := t.count(cfg.Devices)
		if t.Scenario == ScenarioHubSide {
			continue
		}
		for ; n > 0 && k < len(perm); n-- {
			out[perm[k]] = t.Scenario
			k++
		}
	}
	if cfg.Scenarios.Has(ScenarioHubSide) {
		for ; k < len(perm); k++ {
			out[perm[k]] = ScenarioHubSide
		}
	}
	return out
}

// scPlan is what a scenario means for one device.
type scPlan struct {
	kind Scenario
	at   time.Duration // the one-shot moment (clock jump, key rotation, disable, mass drop)
	src  net.IP        // source address override (mass-drop)
	twin net.IP        // the duplicate's address (duplicate-identity)
	ttl  time.Duration // token lifetime override
	// Runtime, owned by the device's goroutine.
	done     bool          // the one-shot happened
	skewed   bool          // the clock jump happened
	nextDrop time.Duration // unstable-network: the next reset (run offset)
}

// scenarioFor builds the plan of a device playing kind (nil: a healthy
// device).
func scenarioFor(kind Scenario, i int, r *rand.Rand, rampEnd time.Duration) *scPlan {
	if kind == "" {
		return nil
	}
	p := &scPlan{kind: kind}
	// One-shots land a while after the ramp, spread over 30 s, leaving
	// most of the run to show their consequence.
	p.at = rampEnd + 20*time.Second + time.Duration(r.Float64()*float64(30*time.Second))
	switch kind {
	case ScenarioRenewal:
		p.ttl = scenarioTTL
	case ScenarioShortToken:
		p.ttl = shortTokenTTL
	case ScenarioMassDrop:
		p.src = net.IPv4(127, 0, 5, byte(2+i%50))
		p.at = rampEnd + 30*time.Second // all at once
	case ScenarioDuplicate:
		p.twin = net.IPv4(127, 0, 7, byte(2+i%50))
	}
	return p
}

// tokenTTL is the lifetime of the device's tokens.
func (d *device) tokenTTL() time.Duration {
	if d.sc != nil && d.sc.ttl > 0 {
		return d.sc.ttl
	}
	return d.f.prof.TokenTTL
}

// clock is the device's own time: the hub's, unless its clock jumped.
func (d *device) clock() time.Time {
	if d.sc != nil && d.sc.skewed {
		return time.Now().Add(-clockSkew)
	}
	return time.Now()
}

// scenarioAction is what a scenario does to a session.
type scenarioAction int

const (
	scNone  scenarioAction = iota
	scDrop                 // close without DISCONNECT (a reset on the path)
	scClose                // DISCONNECT and reconnect (the application restarts its client)
	scOut                  // close without DISCONNECT and stay away (the network is down)
)

// scenarioDue is when (elapsed since the session began) the scenario next
// acts on the session s, or never.
func (d *device) scenarioDue(s *session, began time.Time, never time.Duration, flapAt time.Duration) time.Duration {
	sc := d.sc
	if sc == nil || d.twin {
		return never
	}
	since := d.f.since()
	el := time.Since(began)
	fromRun := func(at time.Duration) time.Duration { return el + (at - since) }
	switch sc.kind {
	case ScenarioExpired, ScenarioWrongKey, ScenarioDisabled, ScenarioMassDrop:
		if !sc.done {
			return max(fromRun(sc.at), 0)
		}
	case ScenarioIdle:
		return s.lastSent.Add(natIdleTimeout).Sub(began)
	case ScenarioUnstable:
		if sc.nextDrop == 0 || sc.nextDrop < since-time.Second {
			sc.nextDrop = since + time.Duration(d.rnd.ExpFloat64()/unstableRate*float64(time.Minute))
		}
		return max(fromRun(sc.nextDrop), 0)
	case ScenarioFlapping:
		return flapAt
	}
	return never
}

// flapDelay is when a flapping device's application next restarts its
// client (elapsed from the session's start).
func (d *device) flapDelay() time.Duration {
	return flapMin + time.Duration(d.rnd.Float64()*float64(flapMax-flapMin))
}

// scenarioAct does what the scenario does now to the open session s.
func (d *device) scenarioAct(s *session) scenarioAction {
	sc := d.sc
	f := d.f
	switch sc.kind {
	case ScenarioExpired:
		sc.done, sc.skewed = true, true
		return scClose // the device restarts with its clock two hours back
	case ScenarioWrongKey:
		sc.done = true
		d.rotateKey()
		return scClose // it restarts, still holding the old key
	case ScenarioDisabled:
		sc.done = true
		d.setDisabled(true, s)
		return scNone // the hub closes the session itself
	case ScenarioMassDrop:
		sc.done = true
		return scOut
	case ScenarioIdle:
		return scDrop
	case ScenarioUnstable:
		sc.nextDrop = f.since() + time.Duration(d.rnd.ExpFloat64()/unstableRate*float64(time.Minute))
		return scDrop
	case ScenarioFlapping:
		return scClose
	}
	return scNone
}

// rotateKey gives the device a new primary key in the registry; the
// device keeps its old one.
func (d *device) rotateKey() {
	f := d.f
	if f.api == nil {
		f.stats.countError(errors.New("registry: no API to rotate a key with"))
		return
	}
	ctx, cancel := context.WithTimeout(f.hard, 30*time.Second)
	defer cancel()
	dev := hubclient.Device{ID: d.id, PrimaryKey: DeviceKey(f.keySeed, d.id+"/rotated"), SecondaryKey: DeviceKey(f.keySeed, d.id+"/secondary")}
	if err := f.api.PutDevice(ctx, dev); err != nil {
		f.stats.countError(errors.New("registry: " + err.Error()))
	}
}

// validateScenarios checks the scenarios against the rest of the config.
func (c *Config) validateScenarios(bad func(string, ...any)) {
	total := 0
	for _, t := range c.Scenarios {
		if t.Scenario == ScenarioHubSide {
			continue
		}
		total += t.count(max(c.Devices, 1))
	}
	if total > c.Devices {
		bad("the scenarios pick %d devices of %d: give smaller counts", total, c.Devices)
	}
	if len(c.Scenarios) > 0 && c.Duration > 0 && c.Duration < 2*time.Minute {
		bad("--duration %s: scenarios need at least 2m to show their pattern (5m is better)", c.Duration)
	}
}

// applyScenario sets what the scenario changes in the device's plan and
// addresses.
func (d *device) applyScenario() {
	sc := d.sc
	switch {
	case d.twin && sc.twin != nil:
		d.src = sc.twin
	case sc.src != nil:
		d.src = sc.src
	}
	if sc.kind == ScenarioDuplicate && !d.twin {
		d.plan.hasTwin, d.plan.twinAt = true, sc.at
	}
}
