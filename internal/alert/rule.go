package alert

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Kind says what a rule watches.
type Kind string

const (
	KindMetric Kind = "metric"
	KindLog    Kind = "log"
)

// SignalType is the common alert schema's name of the kind.
func (k Kind) SignalType() string {
	if k == KindLog {
		return "Log"
	}
	return "Metric"
}

// Operator compares a value with the threshold (Azure Monitor's names).
type Operator string

const (
	GreaterThan        Operator = "GreaterThan"
	GreaterThanOrEqual Operator = "GreaterThanOrEqual"
	LessThan           Operator = "LessThan"
	LessThanOrEqual    Operator = "LessThanOrEqual"
	Equals             Operator = "Equals"
	NotEquals          Operator = "NotEquals"
)

var operatorSymbols = map[string]Operator{
	">": GreaterThan, ">=": GreaterThanOrEqual, "<": LessThan, "<=": LessThanOrEqual,
	"==": Equals, "=": Equals, "!=": NotEquals,
}

// ParseOperator accepts Azure's names (any case) and the symbols > >= < <= == !=.
func ParseOperator(s string) (Operator, error) {
	if op, ok := operatorSymbols[strings.TrimSpace(s)]; ok {
		return op, nil
	}
	for _, op := range []Operator{GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual, Equals, NotEquals} {
		if strings.EqualFold(s, string(op)) {
			return op, nil
		}
	}
	return "", fmt.Errorf("unknown operator %q: use GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual, Equals, NotEquals or > >= < <= == !=", s)
}

// Holds reports whether "v op threshold" is true. NaN never holds.
func (op Operator) Holds(v, threshold float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch op {
	case GreaterThan:
		return v > threshold
	case GreaterThanOrEqual:
		return v >= threshold
	case LessThan:
		return v < threshold
	case LessThanOrEqual:
		return v <= threshold
	case Equals:
		return v == threshold
	case NotEquals:
		return v != threshold
	}
	return false
}

// Aggregation combines the samples (or rows) of a window.
type Aggregation string

const (
	Average Aggregation = "Average"
	Minimum Aggregation = "Minimum"
	Maximum Aggregation = "Maximum"
	Total   Aggregation = "Total"
	Count   Aggregation = "Count"
)

// ParseAggregation accepts the names in any case, and avg/min/max/sum.
func ParseAggregation(s string) (Aggregation, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "average", "avg":
		return Average, nil
	case "minimum", "min":
		return Minimum, nil
	case "maximum", "max":
		return Maximum, nil
	case "total", "sum":
		return Total, nil
	case "count":
		return Count, nil
	}
	return "", fmt.Errorf("unknown aggregation %q: use Average, Minimum, Maximum, Total or Count", s)
}

// Severity is 0 (Critical) to 4 (Verbose).
type Severity int

// String is the common alert schema's form: Sev0 … Sev4.
func (s Severity) String() string { return fmt.Sprintf("Sev%d", int(s)) }

// Rule is one alert rule. Load fills defaults and checks it; a Rule built
// in code must pass Validate.
type Rule struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Kind        Kind     `json:"kind"`
	Severity    Severity `json:"severity"`
	// Disabled rules are not evaluated; their fired alerts resolve.
	Disabled bool `json:"disabled,omitempty"`

	// Frequency is how often the rule is evaluated (≥ 1 s); Window is the
	// lookback of each evaluation (≥ Frequency).
	Frequency time.Duration `json:"frequency"`
	Window    time.Duration `json:"window"`

	Operator    Operator    `json:"operator"`
	Threshold   float64     `json:"threshold"`
	Aggregation Aggregation `json:"aggregation"`

	// Metric rules: the metric's Azure name, dimension values accepted
	// (empty: all) and the dimensions that split it into series.
	Metric string              `json:"metric,omitempty"`
	Filter map[string][]string `json:"filter,omitempty"`
	// SplitBy: metric dimensions, or result columns of a log query.
	SplitBy []string `json:"splitBy,omitempty"`

	// Log rules: the KQL query and the column aggregated (empty: the rows
	// are counted; Aggregation must then be Count).
	Query   string `json:"query,omitempty"`
	Measure string `json:"measure,omitempty"`

	// MinFailing of the last Evaluations evaluations must be violations
	// to fire ("N of the last M periods"; default 1 of 1).
	MinFailing  int `json:"minFailingPeriods"`
	Evaluations int `json:"evaluationPeriods"`
	// ResolveAfter is the number of consecutive evaluations the firing
	// criterion must be false before the alert resolves (default 3).
	ResolveAfter int `json:"resolveAfter"`

	ActionGroups []string  `json:"actionGroups,omitempty"`
	RateLimit    RateLimit `json:"rateLimit"`

	// Pos is where the rule was defined (file:line:col), for messages.
	Pos string `json:"-"`
}

// RateLimit allows Count Fired notifications of a rule per Per (a token
// bucket: a burst of Count, refilled evenly).
type RateLimit struct {
	Count int           `json:"count"`
	Per   time.Duration `json:"per"`
}

// Defaults for fields a rules file may leave out.
const (
	DefaultResolveAfter = 3
	DefaultRateCount    = 60
	DefaultRatePer      = time.Hour
	MinFrequency        = time.Second
	MaxEvaluations      = 100
)

// Defaults fills zero fields.
func (r *Rule) Defaults() {
	if r.Frequency == 0 {
		r.Frequency = time.Minute
	}
	if r.Window == 0 {
		r.Window = r.Frequency
	}
	if r.Aggregation == "" {
		if r.Kind == KindLog && r.Measure == "" {
			r.Aggregation = Count
		} else {
			r.Aggregation = Average
		}
	}
	if r.Evaluations == 0 {
		r.Evaluations = max(1, r.MinFailing)
	}
	if r.MinFailing == 0 {
		r.MinFailing = r.Evaluations
	}
	if r.ResolveAfter == 0 {
		r.ResolveAfter = DefaultResolveAfter
	}
	if r.RateLimit.Count == 0 {
		r.RateLimit.Count = DefaultRateCount
	}
	if r.RateLimit.Per == 0 {
		r.RateLimit.Per = DefaultRatePer
	}
}

// Validate lists every problem of a rule with its defaults filled, as
// field → message.
func (r *Rule) Validate() []FieldProblem {
	var ps []FieldProblem
	bad := func(field, format string, args ...any) {
		ps = append(ps, FieldProblem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if err := checkName(r.Name); err != nil {
		bad("name", "%v", err)
	}
	if r.Severity < 0 || r.Severity > 4 {
		bad("severity", "%d is not a severity: use 0 (Critical) to 4 (Verbose)", r.Severity)
	}
	if r.Frequency < MinFrequency {
		bad("frequency", "%s is too short: at least %s", r.Frequency, MinFrequency)
	}
	if r.Frequency >= MinFrequency && r.Frequency%time.Second != 0 {
		bad("frequency", "%s: whole seconds", r.Frequency)
	}
	if r.Window < r.Frequency {
		bad("window", "%s is shorter than the frequency %s: data between windows would never be looked at", r.Window, r.Frequency)
	}
	if r.Operator == "" {
		bad("operator", "an operator is required: GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual, Equals, NotEquals (or > >= < <= == !=)")
	} else if _, err := ParseOperator(string(r.Operator)); err != nil {
		bad("operator", "%v", err)
	}
	if _, err := ParseAggregation(string(r.Aggregation)); err != nil {
		bad("aggregation", "%v", err)
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		bad("threshold", "must be a finite number")
	}
	switch r.Kind {
	case KindMetric:
		if r.Metric == "" {
			bad("metric.name", "a metric rule needs the metric's name (e.g. connectedDeviceCount)")
		}
		if r.Query != "" || r.Measure != "" {
			bad("log", "a metric rule has no query")
		}
		for dim, vals := range r.Filter {
			if len(vals) == 0 {
				bad("metric.filter."+dim, "list at least one value")
			}
		}
	case KindLog:
		if strings.TrimSpace(r.Query) == "" {
			bad("log.query", "a log rule needs a KQL query")
		}
		if r.Metric != "" {
			bad("metric", "a log rule has no metric")
		}
		if r.Measure == "" && r.Aggregation != Count {
			bad("log.aggregation", "%s needs a measure column; without one the rows are counted (Count)", r.Aggregation)
		}
	default:
		bad("kind", "a rule has either a metric or a log block")
	}
	seen := map[string]bool{}
	for _, d := range r.SplitBy {
		if d == "" || seen[d] {
			bad("splitBy", "dimension %q is empty or listed twice", d)
		}
		seen[d] = true
	}
	if r.Evaluations < 1 || r.Evaluations > MaxEvaluations {
		bad("failingPeriods.evaluations", "%d: between 1 and %d", r.Evaluations, MaxEvaluations)
	}
	if r.MinFailing < 1 || r.MinFailing > r.Evaluations {
		bad("failingPeriods.violations", "%d: between 1 and evaluations (%d)", r.MinFailing, r.Evaluations)
	}
	if r.ResolveAfter < 1 || r.ResolveAfter > MaxEvaluations {
		bad("autoResolve.after", "%d: between 1 and %d evaluations", r.ResolveAfter, MaxEvaluations)
	}
	if r.RateLimit.Count < 1 {
		bad("rateLimit.count", "%d: at least 1", r.RateLimit.Count)
	}
	if r.RateLimit.Per < time.Second {
		bad("rateLimit.per", "%s: at least 1s", r.RateLimit.Per)
	}
	return ps
}

// FieldProblem is one problem of a definition.
type FieldProblem struct {
	Field string
	Msg   string
}

// checkName applies Azure's naming rules for alert rules (no
// * # & + : < > ? @ % { } \ /, no trailing space or period), and keeps
// names short enough for paths and subjects.
func checkName(n string) error {
	switch {
	case n == "":
		return fmt.Errorf("a name is required")
	case len(n) > 128:
		return fmt.Errorf("%q is longer than 128 characters", n)
	case strings.ContainsAny(n, "*#&+:<>?@%{}\\/\"\n\r\t"):
		return fmt.Errorf("%q: a name cannot contain * # & + : < > ? @ %% { } \\ / \" or control characters", n)
	case strings.HasSuffix(n, " ") || strings.HasSuffix(n, ".") || strings.HasPrefix(n, " "):
		return fmt.Errorf("%q: a name cannot start with a space or end with a space or a period", n)
	}
	return nil
}
