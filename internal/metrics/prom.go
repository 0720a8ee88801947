package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// promMetrics are the /metrics families (Catalog names each one's
// Prometheus name beside its Azure name). Counters count what this
// process has seen since it started, as Prometheus expects.
type promMetrics struct {
	reg          *prometheus.Registry
	devices      *prometheus.GaugeVec
	connects     *prometheus.CounterVec
	disconnects  *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	// Throttling, by scope.
	throttledConnects *prometheus.CounterVec
	throttledMessages *prometheus.CounterVec
	// sampled are gauges the collector's Gauges option supplies, set at
	// each sample, by catalog name.
	sampled    map[string]prometheus.Gauge
	telemetry  prometheus.Counter
	c2d        prometheus.Counter
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	lag        *prometheus.GaugeVec
	subLag     *prometheus.GaugeVec
	flapping   prometheus.Gauge

	// Operations (operations.go).
	twinOps     *prometheus.CounterVec   // direction, operation, result
	twinSize    *prometheus.HistogramVec // direction, operation
	methodCalls *prometheus.CounterVec   // result
	methodBytes *prometheus.HistogramVec // part
	twinQueries *prometheus.CounterVec   // result
	queryBytes  prometheus.Histogram
}

// latencyBuckets span a local webhook (ms) to a retried one (minutes).
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900}

// sizeBuckets span an empty method payload to a large query page (IoT
// Hub caps method payloads at 128 KiB and twins at 32 KiB of properties
// each; a query page can hold 100 twins).
var sizeBuckets = []float64{16, 64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20}

func newPromMetrics(connected func() float64) *promMetrics {
	p := &promMetrics{reg: prometheus.NewRegistry()}
	p.devices = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tether_registry_devices", Help: "Device identities in the registry, by status.",
	}, []string{"status"})
	p.connects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tether_device_connects_total",
		Help: "Device connection attempts, accepted (result_type=\"Success\") or refused (IoT Hub error code).",
	}, []string{"result_type", "protocol"})
	p.disconnects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tether_device_disconnects_total",
		Help: "Ended device sessions, by IoT Hub error code, protocol and Tether reason.",
	}, []string{"result_type", "protocol", "reason"})
	p.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tether_device_auth_failures_total",
		Help: "Connection attempts refused for authentication (401003), by cause.",
	}, []string{"reason"})
	p.throttledConnects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tether_throttled_connects_total",
		Help: "Connection attempts refused by a throttle, by scope (hub, address, device, handshake).",
	}, []string{"scope"})
	p.throttledMessages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tether_d2c_throttled_messages_total",
		Help: "D2C messages refused (their session ended), by scope (device, hub: 429001; quota: 403002).",
	}, []string{"scope"})
	p.sampled = map[string]prometheus.Gauge{}
	for _, name := range []string{HandshakesInProgress, HandshakesWaiting, DailyQuotaUsed} {
		d, _ := Lookup(name)
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: d.Prometheus, Help: d.Help})
		p.sampled[name] = g
		p.reg.MustRegister(g)
	}
	p.telemetry = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tether_d2c_telemetry_ingress_messages_total", Help: "Device-to-cloud telemetry messages journalled.",
	})
	p.c2d = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tether_c2d_messages_sent_total", Help: "Cloud-to-device messages handed to the broker for delivery.",
	})
	p.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tether_event_deliveries_total",
		Help: "Webhook event delivery outcomes (success, failure = one failed attempt, deadLettered, dropped).",
	}, []string{"subscription", "result"})
	p.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tether_event_delivery_latency_seconds", Help: "From an event's time to the endpoint's 2xx answer.",
		Buckets: latencyBuckets,
	}, []string{"subscription", "event_type"})
	p.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tether_journal_consumer_lag_messages",
		Help: "Journal messages a consumer has not yet processed (pending plus unacknowledged).",
	}, []string{"stream", "consumer"})
	p.subLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tether_event_subscription_lag_seconds",
		Help: "Age of the oldest event a subscription has not yet delivered (0 when it has delivered everything): how far its delivery is behind.",
	}, []string{"subscription"})
	p.flapping = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tether_flapping_devices",
		Help: "Devices whose flap score (reconnects in the last hour, renewals, hub-side returns and probes excluded) is at or above the threshold.",
	})
	p.twinOps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tether_twin_operations_total",
		Help: "Twin operations by direction (d2c: the device's, c2d: the back end's), operation (read, update: replace included) and result.",
	}, []string{"direction", "operation", "result"})
	p.twinSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tether_twin_operation_size_bytes", Help: "Sizes of successful twin operations: the twin read, or the patch or replacement written.",
		Buckets: sizeBuckets,
	}, []string{"direction", "operation"})
	p.methodCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tether_direct_method_calls_total",
		Help: "Direct method calls by result (success: the device answered, whatever its status; failure: not online, timeout, throttled…).",
	}, []string{"result"})
	p.methodBytes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tether_direct_method_payload_bytes", Help: "Request and response payload sizes of successful direct method calls.",
		Buckets: sizeBuckets,
	}, []string{"part"})
	p.twinQueries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tether_twin_queries_total", Help: "Twin queries (one per result page) by result.",
	}, []string{"result"})
	p.queryBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tether_twin_query_result_bytes", Help: "Result page sizes of successful twin queries.",
		Buckets: sizeBuckets,
	})
	p.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tether_connected_devices", Help: "Devices with an established MQTT session.",
		}, connected),
		p.devices, p.connects, p.disconnects, p.authFailures, p.throttledConnects, p.throttledMessages, p.telemetry, p.c2d, p.deliveries, p.latency, p.lag, p.subLag, p.flapping,
		p.twinOps, p.twinSize, p.methodCalls, p.methodBytes, p.twinQueries, p.queryBytes,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return p
}

// handler serves the registry in the Prometheus text format, or
// OpenMetrics when the scraper asks for it (Accept).
func (p *promMetrics) handler() http.Handler {
	return promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}
