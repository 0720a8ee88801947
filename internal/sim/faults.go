package sim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FaultKind names a fault (see the package documentation).
type FaultKind string

const (
	FaultDrop     FaultKind = "drop"
	FaultSilence  FaultKind = "silence"
	FaultDup      FaultKind = "dup"
	FaultExpired  FaultKind = "expired"
	FaultWrongKey FaultKind = "wrongkey"
	FaultDisabled FaultKind = "disabled"
	FaultStorm    FaultKind = "storm"
	FaultSlowTLS  FaultKind = "slow"
	// FaultHubCrash kills the hub abruptly (SIGKILL) at a time after the
	// start and restarts it (Env.CrashHub); in a cluster (several
	// MQTTAddrs) the node at the last address.
	FaultHubCrash FaultKind = "hub-crash"
	// FaultRollingRestart stops and starts a cluster's nodes one after
	// the other, from a time after the start (Env.RestartNode).
	FaultRollingRestart FaultKind = "rolling-restart"
)

var faultKinds = []FaultKind{FaultDrop, FaultSilence, FaultDup, FaultExpired, FaultWrongKey, FaultDisabled, FaultStorm, FaultSlowTLS, FaultHubCrash, FaultRollingRestart}

// timed reports whether a fault kind happens once, to the whole fleet, at
// a time after the start (storm=60s, hub-crash=30s, rolling-restart=40s).
func timed(k FaultKind) bool {
	return k == FaultStorm || k == FaultHubCrash || k == FaultRollingRestart
}

// Fault is one parsed fault term. Exactly one of Count, Fraction,
// PerMinute (a fraction of the fleet per minute) or At (storm, hub-crash)
// is set.
type Fault struct {
	Kind      FaultKind
	Count     int
	Fraction  float64
	PerMinute float64
	At        time.Duration
}

func (f Fault) String() string {
	switch {
	case timed(f.Kind):
		return fmt.Sprintf("%s=%s", f.Kind, f.At)
	case f.PerMinute > 0:
		return fmt.Sprintf("%s=%s%%/min", f.Kind, trimFloat(f.PerMinute*100))
	case f.Fraction > 0:
		return fmt.Sprintf("%s=%s%%", f.Kind, trimFloat(f.Fraction*100))
	}
	return fmt.Sprintf("%s=%d", f.Kind, f.Count)
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Faults is a parsed --faults list.
type Faults []Fault

func (fs Faults) String() string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, f.String())
	}
	return strings.Join(parts, ",")
}

// Get returns the fault of kind k, if given.
func (fs Faults) Get(k FaultKind) (Fault, bool) {
	for _, f := range fs {
		if f.Kind == k {
			return f, true
		}
	}
	return Fault{}, false
}

// ParseFaults parses "drop=2%/min,dup=10,silence=1%,storm=60s". Values: a
// count (10), a fraction of the fleet (5%, 0.05) or a fraction per minute
// (2%/min); storm and hub-crash take the time after the start (60s).
// Every problem is reported at once.
func ParseFaults(s string) (Faults, error) {
	var out Faults
	var errs []error
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		k, v, ok := strings.Cut(term, "=")
		kind := FaultKind(strings.ToLower(strings.TrimSpace(k)))
		v = strings.TrimSpace(v)
		switch {
		case !ok || v == "":
			errs = append(errs, fmt.Errorf("fault %q: want kind=value", term))
			continue
		case !slices.Contains(faultKinds, kind):
			errs = append(errs, fmt.Errorf("fault %q: unknown kind %q (have %s)", term, k, kindList()))
			continue
		}
		if _, dup := out.Get(kind); dup {
			errs = append(errs, fmt.Errorf("fault %q: %s given twice", term, kind))
			continue
		}
		f, err := parseFaultValue(kind, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("fault %q: %w", term, err))
			continue
		}
		out = append(out, f)
	}
	return out, errors.Join(errs...)
}

func kindList() string {
	var s []string
	for _, k := range faultKinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

func parseFaultValue(kind FaultKind, v string) (Fault, error) {
	f := Fault{Kind: kind}
	if timed(kind) {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return f, fmt.Errorf("%s takes the time after the start, e.g. 60s", kind)
		}
		f.At = d
		return f, nil
	}
	rate, perMin := strings.CutSuffix(v, "/min")
	frac, isPct := strings.CutSuffix(rate, "%")
	if !isPct && !perMin && !strings.Contains(rate, ".") {
		n, err := strconv.Atoi(rate)
		if err != nil || n <= 0 {
			return f, fmt.Errorf("want a count (10), a fraction (5%%, 0.05) or a rate (2%%/min)")
		}
		f.Count = n
		return f, nil
	}
	x, err := strconv.ParseFloat(frac, 64)
	if err != nil || x <= 0 {
		return f, fmt.Errorf("want a count (10), a fraction (5%%, 0.05) or a rate (2%%/min)")
	}
	if isPct {
		x /= 100
	}
	if x > 1 {
		return f, fmt.Errorf("fraction %s is over 100%%", v)
	}
	if perMin && (kind == FaultDup || kind == FaultSilence || kind == FaultSlowTLS) {
		return f, fmt.Errorf("%s takes a count or a fraction of the fleet (it is a property of those devices for the whole run)", kind)
	}
	if perMin {
		f.PerMinute = x
	} else {
		f.Fraction = x
	}
	return f, nil
}
