package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/kql"
	"github.com/tether-hub/tether/internal/metrics"
)

// RulesCheckOptions are the offline checks of a rules file (tether alert
// check and the hub's own load): metric names, aggregations and
// dimensions against the metrics catalog; log queries compiled against
// the Connections log's table.
func RulesCheckOptions(file string) alert.LoadOptions {
	return alert.LoadOptions{File: file, CheckMetric: checkMetric, CheckQuery: checkQuery}
}

func checkQuery(q string) error {
	_, err := kql.Compile(q, kql.AzureDiagnostics(), logDialect, kql.CompileOptions{Now: time.Now()})
	return err
}

func checkMetric(name string, agg alert.Aggregation, dims []string) error {
	def, err := metrics.Lookup(name)
	if err != nil {
		return err
	}
	var errs []error
	if err := def.Allows(metrics.Aggregation(agg)); err != nil {
		errs = append(errs, err)
	}
	for _, d := range dims {
		if _, err := def.Dimension(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// alertMetricSource adapts the metrics history (Store.Window) to alert
// rules.
func (a *App) alertMetricSource() alert.MetricQueryFunc {
	return func(ctx context.Context, q alert.MetricQuery) ([]alert.MetricValue, error) {
		vals, err := a.Metrics().Window(ctx, metrics.WindowQuery{
			Metric: q.Metric, Aggregation: metrics.Aggregation(q.Aggregation),
			Filter: q.Filter, SplitBy: q.SplitBy, From: q.From, To: q.To,
		})
		if err != nil {
			return nil, err
		}
		out := make([]alert.MetricValue, len(vals))
		for i, v := range vals {
			out[i] = alert.MetricValue{Dimensions: v.Dimensions, Value: v.Value, Samples: v.Samples}
		}
		return out, nil
	}
}

// alertMaxRows bounds a log rule's result: rules count rows, so a cut
// result is an error (summarize in the query instead), not a wrong count.
const alertMaxRows = 100_000

// alertLogSource adapts the KQL engine on the Connections log to log
// alert rules. The window [From, To) becomes the query's timespan (whose
// end is inclusive, hence the nanosecond).
func (a *App) alertLogSource() alert.LogQueryFunc {
	eng := &kql.Engine{DB: a.logs.store, Table: kql.AzureDiagnostics(), Dialect: logDialect, MaxRows: alertMaxRows}
	return func(ctx context.Context, q alert.LogQuery) (alert.LogTable, error) {
		res, err := eng.Run(ctx, kql.Request{Query: q.Query, Timespan: &kql.TimeRange{Start: q.From, End: q.To.Add(-time.Nanosecond)}})
		if err != nil {
			return alert.LogTable{}, err
		}
		if res.Truncated {
			return alert.LogTable{}, fmt.Errorf("the query's result was cut (%s): summarize in the query, e.g. | summarize count() by DeviceId", res.Reason)
		}
		t := alert.LogTable{Columns: make([]string, len(res.Columns)), Rows: res.Rows}
		for i, c := range res.Columns {
			t.Columns[i] = c.Name
		}
		return t, nil
	}
}
