package cluster

import "github.com/prometheus/client_golang/prometheus"

// Metrics of a node for /metrics: the devices of every node (from the
// owner records, so each node's scrape shows the whole cluster with a
// node label), the shared jobs this node leads, and its takeover counts.
var (
	devicesDesc = prometheus.NewDesc("tether_cluster_node_devices",
		"Devices live on each node of the cluster (owner records).", []string{"node"}, nil)
	leadsDesc = prometheus.NewDesc("tether_cluster_leads",
		"1 for each shared job this node runs.", []string{"node", "job"}, nil)
	claimsDesc = prometheus.NewDesc("tether_cluster_claims_total",
		"Device claims this node won.", []string{"node"}, nil)
	remoteDesc = prometheus.NewDesc("tether_cluster_remote_takeovers_total",
		"Sessions this node had another node end for a connect here (cross-node takeovers).", []string{"node"}, nil)
	adoptedDesc = prometheus.NewDesc("tether_cluster_adopted_total",
		"Sessions of lost nodes (or of this node's previous run) this node recorded ended.", []string{"node"}, nil)
	fencesDesc = prometheus.NewDesc("tether_cluster_fences_total",
		"Times this node fenced itself: cut off from the cluster (lease not renewed, no majority reached, or its NATS connection down), it ended its sessions.", []string{"node"}, nil)
	cutDesc = prometheus.NewDesc("tether_cluster_cut_off",
		"1 while this node is fenced (connects refused until its lease is renewed).", []string{"node"}, nil)
	gonesDesc = prometheus.NewDesc("tether_cluster_nodes_taken_total",
		"Times this node found another node gone and adopted its records, by how it was found.", []string{"node", "how"}, nil)
)

type collector struct{ n *Node }

// Collector returns the node's metrics.
func (n *Node) Collector() prometheus.Collector { return collector{n} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{devicesDesc, leadsDesc, claimsDesc, remoteDesc, adoptedDesc, fencesDesc, cutDesc, gonesDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	for node, count := range n.Owners() {
		ch <- prometheus.MustNewConstMetric(devicesDesc, prometheus.GaugeValue, float64(count), node)
	}
	for _, job := range Jobs {
		v := 0.0
		if n.Leads(job) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(leadsDesc, prometheus.GaugeValue, v, n.o.Node, job)
	}
	st := n.Stats()
	ch <- prometheus.MustNewConstMetric(claimsDesc, prometheus.CounterValue, float64(st.Claims), n.o.Node)
	ch <- prometheus.MustNewConstMetric(remoteDesc, prometheus.CounterValue, float64(st.RemoteTakeovers), n.o.Node)
	ch <- prometheus.MustNewConstMetric(adoptedDesc, prometheus.CounterValue, float64(st.Adopted), n.o.Node)
	ch <- prometheus.MustNewConstMetric(fencesDesc, prometheus.CounterValue, float64(st.Fences), n.o.Node)
	cut := 0.0
	if n.CutOff() {
		cut = 1
	}
	ch <- prometheus.MustNewConstMetric(cutDesc, prometheus.GaugeValue, cut, n.o.Node)
	ch <- prometheus.MustNewConstMetric(gonesDesc, prometheus.CounterValue, float64(st.GoneByRoute), n.o.Node, "no-route")
	ch <- prometheus.MustNewConstMetric(gonesDesc, prometheus.CounterValue, float64(st.GoneByLease), n.o.Node, "lease")
}

// Stats are the node's counts so far.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}
