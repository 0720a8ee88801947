package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// observation is one series' outcome of one evaluation.
type observation struct {
	key     string
	dims    map[string]string
	value   float64
	hasData bool
}

// ErrNoSource is returned when a rule's kind has no query function.
var ErrNoSource = errors.New("no data source for this kind of rule")

// observe runs the rule's query for the window ending at t.
func (m *Manager) observe(ctx context.Context, r *Rule, t time.Time) ([]observation, error) {
	from := t.Add(-r.Window)
	switch r.Kind {
	case KindMetric:
		if m.opt.Metrics == nil {
			return nil, fmt.Errorf("metric rule: %w", ErrNoSource)
		}
		vals, err := m.opt.Metrics(ctx, MetricQuery{
			Metric: r.Metric, Aggregation: r.Aggregation, Filter: r.Filter, SplitBy: r.SplitBy, From: from, To: t,
		})
		if err != nil {
			return nil, err
		}
		return metricObservations(r, vals), nil
	case KindLog:
		if m.opt.Logs == nil {
			return nil, fmt.Errorf("log rule: %w", ErrNoSource)
		}
		tab, err := m.opt.Logs(ctx, LogQuery{Query: r.Query, From: from, To: t})
		if err != nil {
			return nil, err
		}
		return logObservations(r, tab)
	}
	return nil, fmt.Errorf("rule kind %q", r.Kind)
}

func metricObservations(r *Rule, vals []MetricValue) []observation {
	out := make([]observation, 0, len(vals))
	for _, v := range vals {
		dims := map[string]string{}
		for _, d := range r.SplitBy {
			dims[d] = lookupFold(v.Dimensions, d)
		}
		has := v.Samples > 0 || r.Aggregation == Count
		out = append(out, observation{key: seriesKey(r.SplitBy, dims), dims: dims, value: v.Value, hasData: has})
	}
	return out
}

// logObservations groups the rows by the split columns and aggregates
// each group: the row count, or the measure column.
// lookupFold finds key in m, exactly or else without regard to case (the
// metric store answers with its canonical dimension names).
func lookupFold(m map[string]string, key string) string {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

func logObservations(r *Rule, tab LogTable) ([]observation, error) {
	col := func(name string) (int, error) {
		for i, c := range tab.Columns {
			if c == name {
				return i, nil
			}
		}
		for i, c := range tab.Columns { // KQL column names are case-sensitive; be lenient in what we find
			if strings.EqualFold(c, name) {
				return i, nil
			}
		}
		return -1, fmt.Errorf("the query result has no column %q (columns: %s)", name, strings.Join(tab.Columns, ", "))
	}
	split := make([]int, len(r.SplitBy))
	for i, d := range r.SplitBy {
		c, err := col(d)
		if err != nil {
			return nil, err
		}
		split[i] = c
	}
	measure := -1
	if r.Measure != "" {
		c, err := col(r.Measure)
		if err != nil {
			return nil, err
		}
		measure = c
	}
	type group struct {
		dims map[string]string
		agg  aggregator
	}
	groups := map[string]*group{}
	var order []string
	for _, row := range tab.Rows {
		dims := make(map[string]string, len(split))
		for i, c := range split {
			dims[r.SplitBy[i]] = cellString(cell(row, c))
		}
		k := seriesKey(r.SplitBy, dims)
		g := groups[k]
		if g == nil {
			g = &group{dims: dims}
			groups[k] = g
			order = append(order, k)
		}
		if measure < 0 {
			g.agg.add(1)
			continue
		}
		v, ok := cellNumber(cell(row, measure))
		if !ok {
			return nil, fmt.Errorf("column %q holds %v, not a number", r.Measure, cell(row, measure))
		}
		g.agg.add(v)
	}
	if len(r.SplitBy) == 0 && len(groups) == 0 {
		// No rows: a count of 0 is data ("fewer than 1 record"); an
		// aggregate of nothing is not.
		return []observation{{key: "", dims: map[string]string{}, value: 0, hasData: r.Aggregation == Count}}, nil
	}
	out := make([]observation, 0, len(order))
	for _, k := range order {
		g := groups[k]
		v, has := g.agg.result(r.Aggregation)
		out = append(out, observation{key: k, dims: g.dims, value: v, hasData: has})
	}
	return out, nil
}

// aggregator folds values into each aggregation at once.
type aggregator struct {
	n             int
	sum, min, max float64
}

func (a *aggregator) add(v float64) {
	if a.n == 0 || v < a.min {
		a.min = v
	}
	if a.n == 0 || v > a.max {
		a.max = v
	}
	a.n++
	a.sum += v
}

func (a *aggregator) result(agg Aggregation) (float64, bool) {
	if agg == Count {
		return float64(a.n), true
	}
	if a.n == 0 {
		return math.NaN(), false
	}
	switch agg {
	case Average:
		return a.sum / float64(a.n), true
	case Minimum:
		return a.min, true
	case Maximum:
		return a.max, true
	case Total:
		return a.sum, true
	}
	return math.NaN(), false
}

func cell(row []any, i int) any {
	if i < len(row) {
		return row[i]
	}
	return nil
}

func cellString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func cellNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// seriesKey names a series by its split dimensions in rule order:
// "dim=value,dim=value" with commas and equals escaped; "" unsplit.
func seriesKey(split []string, dims map[string]string) string {
	if len(split) == 0 {
		return ""
	}
	esc := strings.NewReplacer(`\`, `\\`, ",", `\,`, "=", `\=`)
	parts := make([]string, len(split))
	for i, d := range split {
		parts[i] = esc.Replace(d) + "=" + esc.Replace(dims[d])
	}
	return strings.Join(parts, ",")
}

// sortedDims lists dims as name/value pairs in name order (the payload's
// dimensions array).
func sortedDims(dims map[string]string) []Dimension {
	out := make([]Dimension, 0, len(dims))
	for k, v := range dims {
		out = append(out, Dimension{Name: k, Value: v})
	}
	slices.SortFunc(out, func(a, b Dimension) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Dimension is one name/value pair of a series.
type Dimension struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}
