package metrics

import (
	"errors"
	"fmt"
	"strings"
)

// Aggregation is an Azure Monitor time aggregation.
type Aggregation string

const (
	AggAverage Aggregation = "Average"
	AggMinimum Aggregation = "Minimum"
	AggMaximum Aggregation = "Maximum"
	AggTotal   Aggregation = "Total"
	AggCount   Aggregation = "Count"
)

// Aggregations lists them in Azure's order.
var Aggregations = []Aggregation{AggAverage, AggMinimum, AggMaximum, AggTotal, AggCount}

// Errors a query can wrap (the API maps them to 400).
var (
	ErrUnknownMetric          = errors.New("unknown metric")
	ErrUnknownDimension       = errors.New("unknown dimension")
	ErrUnknownAggregation     = errors.New("unknown aggregation")
	ErrUnsupportedAggregation = errors.New("unsupported aggregation")
	ErrInvalidQuery           = errors.New("invalid metrics query")
	errClosed                 = errors.New("metrics: store closed")
)

// ParseAggregation accepts an Azure aggregation name, case-insensitively
// ("avg", "min", "max", "sum" too).
func ParseAggregation(s string) (Aggregation, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "average", "avg":
		return AggAverage, nil
	case "minimum", "min":
		return AggMinimum, nil
	case "maximum", "max":
		return AggMaximum, nil
	case "total", "sum":
		return AggTotal, nil
	case "count":
		return AggCount, nil
	}
	return "", fmt.Errorf("%w %q; known: Average, Minimum, Maximum, Total, Count", ErrUnknownAggregation, s)
}

// cell is the pre-aggregate of a series in one grain.
type cell struct {
	Sum      float64
	Count    int64
	Min, Max float64
}

func sample(v float64) cell { return cell{Sum: v, Count: 1, Min: v, Max: v} }

// merge adds o into c.
func (c *cell) merge(o cell) {
	if o.Count == 0 {
		return
	}
	if c.Count == 0 {
		*c = o
		return
	}
	c.Sum += o.Sum
	c.Count += o.Count
	c.Min = min(c.Min, o.Min)
	c.Max = max(c.Max, o.Max)
}

// value is a's value of c; ok is false when c holds no sample.
func (c cell) value(a Aggregation) (float64, bool) {
	switch a {
	case AggTotal:
		return c.Sum, true
	case AggCount:
		return float64(c.Count), true
	}
	if c.Count == 0 {
		return 0, false
	}
	switch a {
	case AggAverage:
		return c.Sum / float64(c.Count), true
	case AggMinimum:
		return c.Min, true
	case AggMaximum:
		return c.Max, true
	}
	return 0, false
}
