package alert

import (
	"context"
	"time"
)

// MetricQuery asks for one aggregate per series of a metric over
// [From, To).
type MetricQuery struct {
	Metric      string
	Aggregation Aggregation
	Filter      map[string][]string // dimension → accepted values; empty: all
	SplitBy     []string            // empty: one series
	From, To    time.Time
}

// MetricValue is the aggregate of one series; Samples 0 means no data.
type MetricValue struct {
	Dimensions map[string]string
	Value      float64
	Samples    int
}

// MetricQueryFunc answers metric queries (the app adapts the metric
// store's history).
type MetricQueryFunc func(ctx context.Context, q MetricQuery) ([]MetricValue, error)

// LogQuery runs a KQL query over the records of [From, To).
type LogQuery struct {
	Query    string
	From, To time.Time
}

// LogTable is a query result: column names and rows of JSON-like values
// (string, float64, int64, bool, time.Time, nil).
type LogTable struct {
	Columns []string
	Rows    [][]any
}

// LogQueryFunc answers log queries (the app adapts the KQL engine).
type LogQueryFunc func(ctx context.Context, q LogQuery) (LogTable, error)
