package diag

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the settings watch on /metrics: the revision this
// node applied and the revisions it refused. A node of a cluster whose
// revision stays behind the others' is not applying the cluster's
// settings (its log says why).
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

var (
	revisionDesc = prometheus.NewDesc("tether_diagnostic_settings_revision",
		"Revision of the diagnostic settings (bucket tether_diagnostic_settings) this node's watch has applied. Nodes of a cluster that differ are out of step.", nil, nil)
	refusedDesc = prometheus.NewDesc("tether_diagnostic_settings_refused_total",
		"Stored diagnostic setting revisions this node refused as not valid (the setting in force was kept; the log says why).", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- revisionDesc
	ch <- refusedDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(revisionDesc, prometheus.GaugeValue, float64(c.m.Applied()))
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(c.m.Refused()))
}
