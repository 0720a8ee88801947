package alert

import (
	"context"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

// sample is one point of a fake metric series.
type sample struct {
	t     time.Time
	dims  map[string]string
	value float64
}

// series is a small in-memory metric history that aggregates honestly, so
// tests can check which window a rule asks for.
type series struct {
	mu      sync.Mutex
	samples []sample
	queries []MetricQuery
	fail    error
}

func (s *series) add(t time.Time, v float64, dims ...string) {
	d := map[string]string{}
	for i := 0; i+1 < len(dims); i += 2 {
		d[dims[i]] = dims[i+1]
	}
	s.mu.Lock()
	s.samples = append(s.samples, sample{t: t, dims: d, value: v})
	s.mu.Unlock()
}

func (s *series) query(_ context.Context, q MetricQuery) ([]MetricValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = append(s.queries, q)
	if s.fail != nil {
		return nil, s.fail
	}
	groups := map[string]*aggregator{}
	dims := map[string]map[string]string{}
	for _, p := range s.samples {
		if p.t.Before(q.From) || !p.t.Before(q.To) || !accepts(q.Filter, p.dims) {
			continue
		}
		d := map[string]string{}
		for _, k := range q.SplitBy {
			d[k] = p.dims[k]
		}
		k := seriesKey(q.SplitBy, d)
		if groups[k] == nil {
			groups[k], dims[k] = &aggregator{}, d
		}
		groups[k].add(p.value)
	}
	var out []MetricValue
	if len(q.SplitBy) == 0 && len(groups) == 0 {
		return []MetricValue{{Dimensions: map[string]string{}}}, nil
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, _ := groups[k].result(q.Aggregation)
		out = append(out, MetricValue{Dimensions: dims[k], Value: v, Samples: groups[k].n})
	}
	return out, nil
}

func accepts(filter map[string][]string, dims map[string]string) bool {
	for k, vals := range filter {
		ok := false
		for _, v := range vals {
			ok = ok || dims[k] == v
		}
		if !ok {
			return false
		}
	}
	return true
}

// recorder collects notified transitions.
type recorder struct {
	mu     sync.Mutex
	alerts []Alert
}

func (r *recorder) notify(a Alert) {
	r.mu.Lock()
	r.alerts = append(r.alerts, a)
	r.mu.Unlock()
}

func (r *recorder) take() []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.alerts
	r.alerts = nil
	return out
}

// env is a manager on a fake metric store, a fake log source and a
// history file, at an injected time.
type env struct {
	t    *testing.T
	m    *Manager
	s    *series
	logs func(context.Context, LogQuery) (LogTable, error)
	rec  *recorder
	hist *FileHistory
	dir  string
	now  time.Time
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, rules ...Rule) *env {
	t.Helper()
	return newEnvIn(t, t.TempDir(), rules...)
}

func newEnvIn(t *testing.T, dir string, rules ...Rule) *env {
	t.Helper()
	return newEnvAt(t, dir, t0, rules...)
}

// newEnvAt starts the manager at start (a restart later than t0).
func newEnvAt(t *testing.T, dir string, start time.Time, rules ...Rule) *env {
	t.Helper()
	e := &env{t: t, s: &series{}, rec: &recorder{}, dir: dir, now: start}
	h, _, err := OpenFileHistory(filepath.Join(dir, "history.jsonl"), DefaultRetention, t0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	e.hist = h
	e.m, err = NewManager(Options{
		Metrics: e.s.query,
		Logs: func(ctx context.Context, q LogQuery) (LogTable, error) {
			if e.logs == nil {
				return LogTable{}, ErrNoSource
			}
			return e.logs(ctx, q)
		},
		Notify: e.rec.notify, History: h, Now: func() time.Time { return e.now },
		LogDelay: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	return e
}

// eval evaluates every rule at e.now, then advances the clock by d.
func (e *env) eval(d time.Duration) {
	e.t.Helper()
	if err := e.m.EvaluateAll(context.Background(), e.now); err != nil {
		e.t.Fatal(err)
	}
	e.now = e.now.Add(d)
}

func (e *env) status(name string) RuleStatus {
	e.t.Helper()
	for _, s := range e.m.Rules() {
		if s.Name == name {
			return s
		}
	}
	e.t.Fatalf("no rule %q", name)
	return RuleStatus{}
}

func conditions(as []Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = string(a.Condition)
		if len(a.Dimensions) > 0 {
			out[i] += "(" + seriesKey(a.Rule.SplitBy, a.Dimensions) + ")"
		}
	}
	return out
}

func metricRule(name string, op Operator, threshold float64) Rule {
	return Rule{
		Name: name, Kind: KindMetric, Severity: 2, Metric: "connectedDeviceCount",
		Operator: op, Threshold: threshold, Aggregation: Average,
		Frequency: time.Second, Window: time.Second,
	}
}
