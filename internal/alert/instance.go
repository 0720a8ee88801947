package alert

import "time"

// State of an alert instance.
type State string

const (
	Inactive State = "Inactive"
	Fired    State = "Fired"
	Resolved State = "Resolved"
)

// instance is one series of a rule and its state machine.
type instance struct {
	key  string
	dims map[string]string

	// ring holds the last Evaluations outcomes (true: violation).
	ring   []bool
	pos    int
	filled int
	// falseRun counts consecutive evaluations, while fired, whose firing
	// criterion was false.
	falseRun int

	state      State
	alertID    string
	firedAt    time.Time
	resolvedAt time.Time

	value    float64
	hasData  bool
	lastEval time.Time
	// lastData is the end of the last window in which the series had
	// data (zero: none since the manager started).
	lastData time.Time
}

func newInstance(key string, dims map[string]string, evaluations int) *instance {
	return &instance{key: key, dims: dims, ring: make([]bool, evaluations), state: Inactive}
}

// violations counts the violations among the remembered evaluations.
func (in *instance) violations() int {
	n := 0
	for i := 0; i < in.filled; i++ {
		if in.ring[i] {
			n++
		}
	}
	return n
}

// step records one evaluation and says whether the instance fires or
// resolves now. The caller applies the transition.
func (in *instance) step(r *Rule, violated bool) (fire, resolve bool) {
	in.ring[in.pos] = violated
	in.pos = (in.pos + 1) % len(in.ring)
	in.filled = min(in.filled+1, len(in.ring))
	met := in.violations() >= r.MinFailing
	if in.state != Fired {
		return met, false
	}
	if met {
		in.falseRun = 0
		return false, false
	}
	in.falseRun++
	return false, in.falseRun >= r.ResolveAfter
}

// reset forgets the remembered evaluations (the rule's condition changed).
func (in *instance) reset(evaluations int) {
	in.ring = make([]bool, evaluations)
	in.pos, in.filled, in.falseRun = 0, 0, 0
}

// idle reports whether the instance carries nothing worth keeping.
func (in *instance) idle() bool { return in.state != Fired && in.violations() == 0 }
