package metrics

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// MaxPoints bounds the buckets of one Series call.
const MaxPoints = 10_000

// Point is one bucket of a Series: the values of the asked aggregations
// (absent: no data) and the samples behind them.
type Point struct {
	Time    time.Time
	Values  map[Aggregation]float64
	Samples int
}

// Series is one split series over time.
type Series struct {
	Dimensions map[string]string
	Points     []Point
}

// Series runs q over [From, To) in buckets of interval (the last one
// may be shorter), for each aggregation in aggs; every series has a point
// for every bucket. It is Window per bucket, so its answers are the alert
// evaluator's. An interval finer than a minute over times older than the
// recent window finds the minute rows in the buckets where minutes start.
func (s *Store) Series(ctx context.Context, q WindowQuery, interval time.Duration, aggs []Aggregation) ([]Series, error) {
	if interval < time.Second {
		return nil, fmt.Errorf("%w: the interval must be at least a second (PT1S)", ErrInvalidQuery)
	}
	if !q.From.Before(q.To) {
		return nil, fmt.Errorf("%w: the timespan is empty", ErrInvalidQuery)
	}
	if n := q.To.Sub(q.From) / interval; n >= MaxPoints {
		return nil, fmt.Errorf("%w: %s in steps of %s is %d points, more than %d; use a longer interval or a shorter timespan",
			ErrInvalidQuery, q.To.Sub(q.From), interval, n, MaxPoints)
	}
	var buckets []time.Time
	for t := q.From; t.Before(q.To); t = t.Add(interval) {
		buckets = append(buckets, t)
	}
	byKey := map[string]*Series{}
	var order []string
	for i, b := range buckets {
		wq := q
		wq.From, wq.To = b, b.Add(interval)
		if wq.To.After(q.To) {
			wq.To = q.To
		}
		for _, agg := range aggs {
			wq.Aggregation = agg
			vals, err := s.Window(ctx, wq)
			if err != nil {
				return nil, err
			}
			for _, v := range vals {
				k := seriesLabel(v.Dimensions)
				sr := byKey[k]
				if sr == nil {
					sr = &Series{Dimensions: v.Dimensions, Points: make([]Point, len(buckets))}
					for j, bt := range buckets {
						sr.Points[j] = Point{Time: bt, Values: map[Aggregation]float64{}}
					}
					byKey[k] = sr
					order = append(order, k)
				}
				p := &sr.Points[i]
				if v.Samples > 0 {
					p.Values[agg] = v.Value
					p.Samples = v.Samples
				}
			}
		}
	}
	sort.Strings(order)
	out := make([]Series, len(order))
	for i, k := range order {
		out[i] = *byKey[k]
	}
	return out, nil
}

func seriesLabel(dims map[string]string) string {
	parts := make([]string, 0, len(dims))
	for k, v := range dims {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, "\x1f")
}
