package app

import (
	"github.com/tether-hub/tether/internal/alert"
)

// RulesCheckOptions are the offline checks of a rules file (tether alert
// check): metric names and aggregations, KQL syntax.
func RulesCheckOptions(file string) alert.LoadOptions {
	return alert.LoadOptions{File: file}
}

// alertMetricSource adapts the metrics history to alert rules.
// TODO(metrics): wire metrics.Store.Window when internal/metrics lands.
func (a *App) alertMetricSource() alert.MetricQueryFunc { return nil }

// alertLogSource adapts the KQL engine to log alert rules.
func (a *App) alertLogSource() alert.LogQueryFunc { return nil }
