package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// WindowQuery asks for one metric aggregated over [From, To).
type WindowQuery struct {
	Metric      string              // Azure name, e.g. "connectedDeviceCount", "d2c.telemetry.ingress.success"
	Aggregation Aggregation         // AggAverage, AggMinimum, AggMaximum, AggTotal, AggCount
	Filter      map[string][]string // dimension → accepted values; empty: all
	SplitBy     []string            // dimensions to split by; empty: one series
	From, To    time.Time           // [From, To)
}

// WindowValue is the aggregate of one series (one combination of the
// SplitBy dimensions' values).
type WindowValue struct {
	Dimensions map[string]string // the SplitBy dimensions' values
	Value      float64
	Samples    int // how many samples fed the value (0: no data)
}

// A sample belongs to the window when its time is in [From, To): the
// sample of second ts (taken during ts) is at ts, a minute row at its
// start. Seconds from the memory floor come from memory, whole minutes
// before it from the minute table.
//
// Samples is, for gauges and distributions, the number of samples; for
// counters, which have a sample only when something happened, the number
// of seconds the sampler ran in the window (so "no event in a covered
// window" is a Total of 0 with data, not "no data").
func (s *Store) Window(ctx context.Context, q WindowQuery) ([]WindowValue, error) {
	cq, err := compile(q)
	if err != nil {
		return nil, err
	}
	from, to := ceilSecond(q.From), ceilSecond(q.To)
	acc := accumulator{q: cq, groups: map[string]*group{}, byKey: map[string]*group{}}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	floor := s.floor
	openMinute := int64(-1)
	if s.open.cells != nil {
		openMinute = floorMinute(s.open.ts)
	}
	for ts := max(from, floor); ts < to; {
		// A whole minute in the window, closed: its merged cells.
		f, step := s.frames[ts], int64(1)
		if ts%minuteSeconds == 0 && ts+minuteSeconds <= to && ts != openMinute {
			f, step = s.minutes[ts], minuteSeconds
		}
		ts += step
		if f == nil {
			continue
		}
		acc.ticks += f.ticks
		for dims, c := range f.cells[cq.def.Name] {
			if err := acc.add(s, dims, c); err != nil {
				s.mu.Unlock()
				return nil, err
			}
		}
	}
	s.mu.Unlock()

	if from < floor {
		if err := s.windowMinutes(ctx, &acc, ceilMinute(from), min(to, floor)); err != nil {
			return nil, err
		}
	}
	return acc.result(), nil
}

// windowMinutes adds the minute rows starting in [from, to): whole hours
// from the hourly rollup, the minutes before the first and after the last
// whole hour from the minute table. An hour row is the merge of its minute
// rows (write keeps both in one transaction; retention drops whole hours),
// so the answer is the minutes' own.
func (s *Store) windowMinutes(ctx context.Context, acc *accumulator, from, to int64) error {
	if from >= to {
		return nil
	}
	hFrom, hTo := ceilHour(from), floorHour(to)
	if s.minutesOnly || hFrom >= hTo {
		return s.windowGrain(ctx, acc, "min", minuteSeconds, from, to)
	}
	if err := s.windowGrain(ctx, acc, "min", minuteSeconds, from, hFrom); err != nil {
		return err
	}
	if err := s.windowGrain(ctx, acc, "hour", hourSeconds, hFrom, hTo); err != nil {
		return err
	}
	return s.windowGrain(ctx, acc, "min", minuteSeconds, hTo, to)
}

// windowGrain adds the rows of table (min or hour; grain its seconds)
// starting in [from, to), and the grain's ticks there.
func (s *Store) windowGrain(ctx context.Context, acc *accumulator, table string, grain, from, to int64) error {
	if from >= to {
		return nil
	}
	// SQLite merges each series' rows (cell.merge: sums added, min of
	// mins, max of maxes; no row holds no sample), so one row per series
	// crosses the driver instead of one per minute — over days of minutes
	// that crossing (~2 µs a row) was the read's cost.
	rows, err := s.db.QueryContext(ctx, `SELECT m.series, s.dims, sum(m.sum), sum(m.count), min(m.min), max(m.max)
		FROM `+table+` m JOIN series s ON s.id = m.series
		WHERE s.metric = ? AND m.ts >= ? AND m.ts < ? AND m.count > 0
		GROUP BY m.series`, acc.q.def.Name, from, to)
	if err != nil {
		return fmt.Errorf("metrics: window: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var js sql.RawBytes
		var c cell
		if err := rows.Scan(&id, &js, &c.Sum, &c.Count, &c.Min, &c.Max); err != nil {
			return fmt.Errorf("metrics: window: %w", err)
		}
		// A series' dimensions are decoded once per read.
		key, ok := acc.keys[id]
		if !ok {
			if key, err = keyFromJSON(string(js)); err != nil {
				return err
			}
			if acc.keys == nil {
				acc.keys = map[int64]string{}
			}
			acc.keys[id] = key
		}
		s.mu.Lock()
		err = acc.add(s, key, c)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("metrics: window: %w", err)
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(n), 0) FROM ticks WHERE grain = ? AND ts >= ? AND ts < ?`,
		grain, from, to).Scan(&n); err != nil {
		return fmt.Errorf("metrics: window: %w", err)
	}
	acc.ticks += n
	return nil
}

// compiled is a checked query with canonical dimension names.
type compiled struct {
	def    *Def
	agg    Aggregation
	filter map[string]map[string]bool
	split  []string
}

func compile(q WindowQuery) (compiled, error) {
	var cq compiled
	def, err := Lookup(q.Metric)
	if err != nil {
		return cq, err
	}
	cq.def = def
	if !slices.Contains(Aggregations, q.Aggregation) {
		a, err := ParseAggregation(string(q.Aggregation))
		if err != nil {
			return cq, err
		}
		q.Aggregation = a
	}
	if err := def.Allows(q.Aggregation); err != nil {
		return cq, err
	}
	cq.agg = q.Aggregation
	if !q.From.Before(q.To) {
		return cq, fmt.Errorf("%w: the window [%s, %s) is empty: From must be before To",
			ErrInvalidQuery, q.From.Format(time.RFC3339Nano), q.To.Format(time.RFC3339Nano))
	}
	cq.filter = map[string]map[string]bool{}
	for name, values := range q.Filter {
		dim, err := def.Dimension(name)
		if err != nil {
			return cq, err
		}
		if len(values) == 0 || slices.Contains(values, "*") {
			continue // all values
		}
		set := cq.filter[dim]
		if set == nil {
			set = map[string]bool{}
			cq.filter[dim] = set
		}
		for _, v := range values {
			set[v] = true
		}
	}
	for _, name := range q.SplitBy {
		dim, err := def.Dimension(name)
		if err != nil {
			return cq, err
		}
		if !slices.Contains(cq.split, dim) {
			cq.split = append(cq.split, dim)
		}
	}
	return cq, nil
}

type group struct {
	dims map[string]string
	c    cell
}

type accumulator struct {
	q      compiled
	groups map[string]*group
	byKey  map[string]*group // dims key → its group (nil: filtered out)
	ticks  int64             // sampler seconds in the window
	keys   map[int64]string  // series id → dims key, decoded once per read
}

// add merges one series cell; callers hold s.mu (dims cache).
func (a *accumulator) add(s *Store, key string, c cell) error {
	if g, ok := a.byKey[key]; ok {
		if g != nil {
			g.c.merge(c)
		}
		return nil
	}
	dims, err := s.decodeDims(key)
	if err != nil {
		return err
	}
	for dim, accept := range a.q.filter {
		if !accept[dims[dim]] {
			a.byKey[key] = nil // filtered out
			return nil
		}
	}
	parts := make([]string, len(a.q.split))
	for i, dim := range a.q.split {
		parts[i] = dims[dim]
	}
	gk := strings.Join(parts, "\x1f")
	g := a.groups[gk]
	if g == nil {
		gd := make(map[string]string, len(a.q.split))
		for _, dim := range a.q.split {
			gd[dim] = dims[dim]
		}
		g = &group{dims: gd}
		a.groups[gk] = g
	}
	a.byKey[key] = g
	g.c.merge(c)
	return nil
}

func (a *accumulator) result() []WindowValue {
	a.zeroSeries()
	out := make([]WindowValue, 0, len(a.groups))
	for _, g := range a.groups {
		v, ok := g.c.value(a.q.agg)
		n := int(g.c.Count)
		if a.q.def.Kind == Counter && a.ticks > 0 {
			n = int(a.ticks)
		}
		if !ok || n == 0 {
			v = 0
		}
		out = append(out, WindowValue{Dimensions: g.dims, Value: v, Samples: n})
	}
	sort.Slice(out, func(i, j int) bool { return dimsLess(a.q.split, out[i].Dimensions, out[j].Dimensions) })
	return out
}

// zeroSeries adds the series a query shows even without samples: the one
// series of an unsplit query, and, for counters, every combination of the
// filter's values when each split dimension is filtered.
func (a *accumulator) zeroSeries() {
	if len(a.q.split) == 0 {
		if a.groups[""] == nil {
			a.groups[""] = &group{dims: map[string]string{}}
		}
		return
	}
	if a.q.def.Kind != Counter {
		return
	}
	combos := []map[string]string{{}}
	for _, dim := range a.q.split {
		values := a.q.filter[dim]
		if len(values) == 0 {
			return
		}
		sorted := make([]string, 0, len(values))
		for v := range values {
			sorted = append(sorted, v)
		}
		sort.Strings(sorted)
		var next []map[string]string
		for _, c := range combos {
			for _, v := range sorted {
				m := make(map[string]string, len(c)+1)
				for k, x := range c {
					m[k] = x
				}
				m[dim] = v
				next = append(next, m)
			}
		}
		combos = next
	}
	for _, c := range combos {
		parts := make([]string, len(a.q.split))
		for i, dim := range a.q.split {
			parts[i] = c[dim]
		}
		if gk := strings.Join(parts, "\x1f"); a.groups[gk] == nil {
			a.groups[gk] = &group{dims: c}
		}
	}
}

func dimsLess(order []string, x, y map[string]string) bool {
	for _, d := range order {
		if x[d] != y[d] {
			return x[d] < y[d]
		}
	}
	return false
}

// ceilSecond is the first whole second at or after t, in unix seconds.
func ceilSecond(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
