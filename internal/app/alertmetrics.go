package app

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tether-hub/tether/internal/alert"
)

// alertMetrics exposes the alert engine on /metrics, read at scrape time
// from the manager's and the dispatcher's own counters (nothing is
// counted twice).
type alertMetrics struct {
	svc                                *alertService
	firing, evals, failures            *prometheus.Desc
	notifications, queued, rateLimited *prometheus.Desc
	revision, refused                  *prometheus.Desc
}

var _ prometheus.Collector = (*alertMetrics)(nil)

func newAlertMetrics(svc *alertService) *alertMetrics {
	return &alertMetrics{
		svc: svc,
		firing: prometheus.NewDesc("tether_alerts_firing",
			"Fired alert instances (series) of a rule.", []string{"rule", "severity"}, nil),
		evals: prometheus.NewDesc("tether_alert_rule_evaluations_total",
			"Evaluations of a rule since the hub started.", []string{"rule"}, nil),
		failures: prometheus.NewDesc("tether_alert_rule_evaluation_failures_total",
			"Evaluations of a rule that failed (query error; the state is kept).", []string{"rule"}, nil),
		notifications: prometheus.NewDesc("tether_alert_notifications_total",
			"Alert notifications per destination by outcome: sent, failed (gave up), retried (attempts retried), dropped (queue full).",
			[]string{"action_group", "kind", "outcome"}, nil),
		queued: prometheus.NewDesc("tether_alert_notifications_queued",
			"Alert notifications waiting in a destination's send loop.", []string{"action_group", "kind"}, nil),
		rateLimited: prometheus.NewDesc("tether_alert_notifications_rate_limited_total",
			"Fired notifications (with their Resolved) suppressed by the rules' rate limits.", nil, nil),
		revision: prometheus.NewDesc("tether_alert_rules_revision",
			"Revision of the alert rules in force on this node (bucket tether_alert_rules; 0: none). Nodes of a cluster that differ are out of step.", nil, nil),
		refused: prometheus.NewDesc("tether_alert_rules_refused_total",
			"Rules files and bucket revisions this node did not put in force because they do not load here (the log says why).", nil, nil),
	}
}

func (m *alertMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.firing, m.evals, m.failures, m.notifications, m.queued, m.rateLimited, m.revision, m.refused} {
		ch <- d
	}
}

func (m *alertMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, r := range m.svc.mgr.Rules() {
		firing := 0
		for _, in := range r.Alerts {
			if in.State == alert.Fired {
				firing++
			}
		}
		ch <- prometheus.MustNewConstMetric(m.firing, prometheus.GaugeValue, float64(firing), r.Name, r.Severity)
		ch <- prometheus.MustNewConstMetric(m.evals, prometheus.CounterValue, float64(r.EvalCount), r.Name)
		ch <- prometheus.MustNewConstMetric(m.failures, prometheus.CounterValue, float64(r.Failures), r.Name)
	}
	dests, limited := m.svc.disp.Stats()
	// Several destinations of one kind in a group add up (the labels
	// would repeat otherwise).
	type key struct{ group, kind, outcome string }
	sums := map[key]uint64{}
	queued := map[[2]string]int{}
	for _, d := range dests {
		sums[key{d.Group, d.Kind, "sent"}] += d.Sent
		sums[key{d.Group, d.Kind, "failed"}] += d.Failed
		sums[key{d.Group, d.Kind, "retried"}] += d.Retried
		sums[key{d.Group, d.Kind, "dropped"}] += d.Dropped
		queued[[2]string{d.Group, d.Kind}] += d.Queued
	}
	for k, v := range sums {
		ch <- prometheus.MustNewConstMetric(m.notifications, prometheus.CounterValue, float64(v), k.group, k.kind, k.outcome)
	}
	for k, v := range queued {
		ch <- prometheus.MustNewConstMetric(m.queued, prometheus.GaugeValue, float64(v), k[0], k[1])
	}
	ch <- prometheus.MustNewConstMetric(m.rateLimited, prometheus.CounterValue, float64(limited))
	var rev uint64
	if src := m.svc.Source(context.Background()); src != nil {
		rev = src.Revision
	}
	ch <- prometheus.MustNewConstMetric(m.revision, prometheus.GaugeValue, float64(rev))
	ch <- prometheus.MustNewConstMetric(m.refused, prometheus.CounterValue, float64(m.svc.refused.Load()))
}
