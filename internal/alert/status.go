package alert

import (
	"sort"
	"time"
)

// RuleStatus is a rule as the API lists it: definition, state, last
// evaluation and its alert instances.
type RuleStatus struct {
	Name         string              `json:"name"`
	Description  string              `json:"description,omitempty"`
	Kind         Kind                `json:"kind"`
	Severity     string              `json:"severity"`
	Enabled      bool                `json:"enabled"`
	Frequency    string              `json:"evaluationFrequency"`
	Window       string              `json:"windowSize"`
	Metric       string              `json:"metric,omitempty"`
	Query        string              `json:"query,omitempty"`
	Measure      string              `json:"measure,omitempty"`
	Filter       map[string][]string `json:"filter,omitempty"`
	SplitBy      []string            `json:"splitBy,omitempty"`
	Aggregation  Aggregation         `json:"timeAggregation"`
	Operator     Operator            `json:"operator"`
	Threshold    float64             `json:"threshold"`
	MinFailing   int                 `json:"minFailingPeriodsToAlert"`
	Evaluations  int                 `json:"numberOfEvaluationPeriods"`
	ResolveAfter int                 `json:"resolveAfter"`
	ActionGroups []string            `json:"actionGroups"`
	Source       string              `json:"source,omitempty"`

	// State is Fired when any instance is fired, else Inactive.
	State         State      `json:"state"`
	LastEvaluated *time.Time `json:"lastEvaluated,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	EvalCount     uint64     `json:"evaluationCount"`
	Failures      uint64     `json:"failedEvaluationCount"`
	Alerts        []Instance `json:"alerts"`
}

// Instance is one series of a rule and its state.
type Instance struct {
	AlertID    string            `json:"alertId,omitempty"`
	State      State             `json:"state"`
	Dimensions map[string]string `json:"dimensions,omitempty"`
	Value      *float64          `json:"metricValue,omitempty"`
	Violations int               `json:"violations"`
	FiredAt    *time.Time        `json:"firedDateTime,omitempty"`
	ResolvedAt *time.Time        `json:"resolvedDateTime,omitempty"`
}

// Rules returns the status of every rule in name order.
func (m *Manager) Rules() []RuleStatus {
	m.mu.Lock()
	states := make([]*ruleState, 0, len(m.rules))
	for _, rs := range m.rules {
		states = append(states, rs)
	}
	m.mu.Unlock()
	out := make([]RuleStatus, 0, len(states))
	for _, rs := range states {
		out = append(out, rs.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (rs *ruleState) status() RuleStatus {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.rule
	s := RuleStatus{
		Name: r.Name, Description: r.Description, Kind: r.Kind, Severity: r.Severity.String(), Enabled: !r.Disabled,
		Frequency: ISODuration(r.Frequency), Window: ISODuration(r.Window), Metric: r.Metric, Query: r.Query,
		Measure: r.Measure, Filter: r.Filter, SplitBy: r.SplitBy, Aggregation: r.Aggregation, Operator: r.Operator,
		Threshold: r.Threshold, MinFailing: r.MinFailing, Evaluations: r.Evaluations, ResolveAfter: r.ResolveAfter,
		ActionGroups: r.ActionGroups, Source: r.Pos, State: Inactive, EvalCount: rs.evals, Failures: rs.failures,
		Alerts: []Instance{},
	}
	if s.ActionGroups == nil {
		s.ActionGroups = []string{}
	}
	if !rs.lastEval.IsZero() {
		t := rs.lastEval
		s.LastEvaluated = &t
	}
	if rs.lastErr != nil {
		s.LastError = rs.lastErr.Error()
	}
	for _, in := range rs.instances {
		i := Instance{AlertID: in.alertID, State: in.state, Dimensions: in.dims, Violations: in.violations()}
		if in.hasData {
			v := in.value
			i.Value = &v
		}
		if !in.firedAt.IsZero() {
			t := in.firedAt
			i.FiredAt = &t
		}
		if !in.resolvedAt.IsZero() {
			t := in.resolvedAt
			i.ResolvedAt = &t
		}
		if in.state == Fired {
			s.State = Fired
		}
		s.Alerts = append(s.Alerts, i)
	}
	sort.Slice(s.Alerts, func(i, j int) bool {
		return seriesKey(r.SplitBy, s.Alerts[i].Dimensions) < seriesKey(r.SplitBy, s.Alerts[j].Dimensions)
	})
	return s
}

// History returns the transitions that match q.
func (m *Manager) History(q HistoryQuery) []Record { return m.opt.History.List(q) }
