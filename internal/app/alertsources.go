package app

import (
	"context"
	"errors"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/metrics"
)

// RulesCheckOptions are the offline checks of a rules file (tether alert
// check and the hub's own load): metric names, aggregations and
// dimensions against the metrics catalog.
func RulesCheckOptions(file string) alert.LoadOptions {
	return alert.LoadOptions{File: file, CheckMetric: checkMetric}
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

// alertLogSource adapts the KQL engine to log alert rules; nil until the
// engine is part of the hub (log rules then report that they have no
// source).
func (a *App) alertLogSource() alert.LogQueryFunc { return nil }
