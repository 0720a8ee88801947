package metrics

import (
	"fmt"
	"sort"
	"strings"
)

// Kind is how a metric's samples come about, which decides the
// aggregations that make sense (reference/iothub-facts.md §4.1).
type Kind int

const (
	// Gauge: a snapshot sampled once a second (Azure "snapshot" counts:
	// only Average, Minimum, Maximum make sense; Count is the samples).
	Gauge Kind = iota
	// Counter: every occurrence is a sample of 1 (Azure "single-point"
	// counts: Total is the number of occurrences, as is Count).
	Counter
	// Distribution: every observation is a sample of its value (latency).
	Distribution
)

func (k Kind) String() string {
	switch k {
	case Gauge:
		return "gauge"
	case Counter:
		return "counter"
	case Distribution:
		return "distribution"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Metric names (Azure Monitor's where IoT Hub has the metric; the others
// are Tether's, in the same style).
const (
	ConnectedDevices = "connectedDeviceCount"
	TotalDevices     = "totalDeviceCount"
	EnabledDevices   = "enabledDeviceCount"
	Connects         = "deviceConnects"
	Disconnects      = "deviceDisconnects"
	AuthFailures     = "deviceAuthFailures"
	TelemetryIngress = "d2c.telemetry.ingress.success"
	C2DSent          = "c2d.messages.sent"
	Deliveries       = "EventGridDeliveries"
	DeliveryLatency  = "EventGridLatency"
	JournalLag       = "journalConsumerLag"
	SubscriptionLag  = "EventSubscriptionLag"
	FlappingDevices  = "flappingDevices"

	// Throttling (internal/throttle).
	ThrottledConnects    = "throttledConnects"
	SendThrottle         = "d2c.telemetry.ingress.sendThrottle"
	DailyQuotaUsed       = "dailyMessageQuotaUsed"
	HandshakesInProgress = "tlsHandshakesInProgress"
	HandshakesWaiting    = "tlsHandshakesWaiting"

	// Twin, method and query operations (operations.go).
	MethodsSuccess        = "c2d.methods.success"
	MethodsFailure        = "c2d.methods.failure"
	MethodsRequestSize    = "c2d.methods.requestSize"
	MethodsResponseSize   = "c2d.methods.responseSize"
	D2CTwinReadSuccess    = "d2c.twin.read.success"
	D2CTwinReadFailure    = "d2c.twin.read.failure"
	D2CTwinReadSize       = "d2c.twin.read.size"
	D2CTwinUpdateSuccess  = "d2c.twin.update.success"
	D2CTwinUpdateFailure  = "d2c.twin.update.failure"
	D2CTwinUpdateSize     = "d2c.twin.update.size"
	C2DTwinReadSuccess    = "c2d.twin.read.success"
	C2DTwinReadFailure    = "c2d.twin.read.failure"
	C2DTwinReadSize       = "c2d.twin.read.size"
	C2DTwinUpdateSuccess  = "c2d.twin.update.success"
	C2DTwinUpdateFailure  = "c2d.twin.update.failure"
	C2DTwinUpdateSize     = "c2d.twin.update.size"
	TwinQueriesSuccess    = "twinQueries.success"
	TwinQueriesFailure    = "twinQueries.failure"
	TwinQueriesResultSize = "twinQueries.resultSize"
)

// Dimension names.
const (
	DimResultType   = "ResultType"
	DimProtocol     = "Protocol"
	DimReason       = "Reason"
	DimSubscription = "Subscription"
	DimResult       = "Result"
	DimEventType    = "EventType"
	DimStream       = "Stream"
	DimConsumer     = "Consumer"
	DimScope        = "Scope"
	// DimTokenRenewal splits deviceConnects: "true" for a connect that
	// completed a SAS-token renewal (no loss of service), "false" for
	// every other attempt.
	DimTokenRenewal = "TokenRenewal"
)

// Def describes one metric.
type Def struct {
	Name        string // Azure-style name, as queries use it
	DisplayName string
	Unit        string // Azure unit: Count, Milliseconds, Bytes
	Kind        Kind
	Dimensions  []string
	// Aggregations the metric allows; the first is its default.
	Aggregations []Aggregation
	// Prometheus is the family name on /metrics.
	Prometheus string
	Help       string
}

var (
	snapshotAggs = []Aggregation{AggAverage, AggMinimum, AggMaximum, AggCount}
	countAggs    = []Aggregation{AggTotal, AggCount}
	distAggs     = []Aggregation{AggAverage, AggMinimum, AggMaximum, AggCount, AggTotal}
)

// Catalog lists every metric, in a stable order.
var Catalog = []Def{
	{ConnectedDevices, "Connected devices", "Count", Gauge, nil, snapshotAggs,
		"tether_connected_devices", "Devices with an established MQTT session."},
	{TotalDevices, "Total devices", "Count", Gauge, nil, snapshotAggs,
		"tether_registry_devices", "Device identities in the registry (label status: enabled|disabled)."},
	{EnabledDevices, "Enabled devices", "Count", Gauge, nil, snapshotAggs,
		"tether_registry_devices{status=\"enabled\"}", "Enabled device identities in the registry."},
	{Connects, "Device connection attempts", "Count", Counter, []string{DimResultType, DimProtocol, DimTokenRenewal}, countAggs,
		"tether_device_connects_total", "Connection attempts, accepted (result_type=\"Success\") or refused (IoT Hub error code)."},
	{Disconnects, "Device disconnects", "Count", Counter, []string{DimResultType, DimProtocol, DimReason}, countAggs,
		"tether_device_disconnects_total", "Ended device sessions by IoT Hub error code, protocol and Tether reason."},
	{AuthFailures, "Device authentication failures", "Count", Counter, []string{DimReason}, countAggs,
		"tether_device_auth_failures_total", "Connection attempts refused for authentication (401003), by cause."},
	{TelemetryIngress, "Telemetry messages sent", "Count", Counter, nil, countAggs,
		"tether_d2c_telemetry_ingress_messages_total", "Device-to-cloud telemetry messages journalled."},
	{C2DSent, "C2D messages sent", "Count", Counter, nil, countAggs,
		"tether_c2d_messages_sent_total", "Cloud-to-device messages handed to the broker for delivery."},
	{Deliveries, "Event Grid deliveries", "Count", Counter, []string{DimSubscription, DimResult}, countAggs,
		"tether_event_deliveries_total", "Webhook event delivery outcomes per subscription (success, failure = a failed attempt, deadLettered, dropped)."},
	{DeliveryLatency, "Event Grid latency", "Milliseconds", Distribution, []string{DimSubscription, DimEventType}, distAggs,
		"tether_event_delivery_latency_seconds", "From an event's time to the endpoint's 2xx answer."},
	{SubscriptionLag, "Event subscription lag", "Seconds", Gauge, []string{DimSubscription}, snapshotAggs,
		"tether_event_subscription_lag_seconds", "Age of the oldest event a subscription has not yet delivered (0 when it has delivered everything): how far its delivery is behind."},
	{JournalLag, "Journal consumer lag", "Count", Gauge, []string{DimStream, DimConsumer}, snapshotAggs,
		"tether_journal_consumer_lag_messages", "Journal messages a consumer has not yet processed (pending + unacknowledged)."},
	{ThrottledConnects, "Throttled connection attempts", "Count", Counter, []string{DimScope}, countAggs,
		"tether_throttled_connects_total", "Connection attempts refused by a throttle, by scope: hub (new-connection rate), address, device (429005), handshake (no TLS handshake slot in time)."},
	{SendThrottle, "Number of throttling errors", "Count", Counter, []string{DimScope}, countAggs,
		"tether_d2c_throttled_messages_total", "D2C messages refused, ending their session, by scope: device or hub (message rate, 429001), quota (daily quota, 403002)."},
	{DailyQuotaUsed, "Total number of messages used", "Count", Gauge, nil, snapshotAggs,
		"tether_daily_message_quota_used", "D2C messages counted against today's quota (reset 00:00 UTC; 0 without a quota)."},
	{HandshakesInProgress, "TLS handshakes in progress", "Count", Gauge, nil, snapshotAggs,
		"tether_tls_handshakes_in_progress", "TLS handshakes of MQTT connections in progress."},
	{HandshakesWaiting, "TLS handshakes waiting", "Count", Gauge, nil, snapshotAggs,
		"tether_tls_handshakes_waiting", "Accepted MQTT/TLS connections waiting for a handshake slot."},
	{FlappingDevices, "Flapping devices", "Count", Gauge, nil, snapshotAggs,
		"tether_flapping_devices", "Devices whose flap score (reconnects in the last hour, renewals, hub-side returns and probes excluded) is at or above the threshold."},

	// Operations: IoT Hub's names, units and aggregations (counts are
	// single-point, sizes distributions of successful operations with
	// Average as the default), from TETHER_OPS.
	{MethodsSuccess, "Successful direct method invocations", "Count", Counter, nil, countAggs,
		`tether_direct_method_calls_total{result="success"}`, "Direct method calls, by result (success: the device answered, whatever its status)."},
	{MethodsFailure, "Failed direct method invocations", "Count", Counter, nil, countAggs,
		`tether_direct_method_calls_total{result="failure"}`, "Direct method calls that failed (device not online, timeout, throttled…)."},
	{MethodsRequestSize, "Request size of direct method invocations", "Bytes", Distribution, nil, distAggs,
		`tether_direct_method_payload_bytes{part="request"}`, "Payload sizes of successful direct method calls (request, response)."},
	{MethodsResponseSize, "Response size of direct method invocations", "Bytes", Distribution, nil, distAggs,
		`tether_direct_method_payload_bytes{part="response"}`, "Response payload sizes of successful direct method calls."},
	{D2CTwinReadSuccess, "Successful twin reads from devices", "Count", Counter, nil, countAggs,
		`tether_twin_operations_total{direction="d2c",operation="read",result="success"}`, "Twin operations by direction (d2c: device-initiated, c2d: back end), operation (read, update) and result."},
	{D2CTwinReadFailure, "Failed twin reads from devices", "Count", Counter, nil, countAggs,
		`tether_twin_operations_total{direction="d2c",operation="read",result="failure"}`, "Device-initiated twin reads that failed."},
	{D2CTwinReadSize, "Response size of twin reads from devices", "Bytes", Distribution, nil, distAggs,
		`tether_twin_operation_size_bytes{direction="d2c",operation="read"}`, "Sizes of successful twin operations: the twin read, the patch or replacement written."},
	{D2CTwinUpdateSuccess, "Successful twin updates from devices", "Count", Counter, nil, countAggs,
		`tether_twin_operations_total{direction="d2c",operation="update",result="success"}`, "Device-initiated reported-property updates that succeeded."},
	{D2CTwinUpdateFailure, "Failed twin updates from devices", "Count", Counter, nil, countAggs,
		`tether_twin_operations_total{direction="d2c",operation="update",result="failure"}`, "Device-initiated reported-property updates that failed."},
	{D2CTwinUpdateSize, "Size of twin updates from devices", "Bytes", Distribution, nil, distAggs,
		`tether_twin_operation_size_bytes{direction="d2c",operation="update"}`, "Sizes of successful reported-property patches."},
	{C2DTwinReadSuccess, "Successful twin reads from back end", "Count", Counter, nil, countAggs,
		`tether_twin_operations_total{direction="c2d",operation="read",result="success"}`, "Back-end twin reads that succeeded."},
	{C2DTwinReadFailure, "Failed twin reads from back end", "Count", Counter, nil, countAggs,
		`tether_twin_operations_total{direction="c2d",operation="read",result="failure"}`, "Back-end twin reads that failed."},
	{C2DTwinReadSize, "Response size of twin reads from back end", "Bytes", Distribution, nil, distAggs,
		`tether_twin_operation_size_bytes{direction="c2d",operation="read"}`, "Sizes of twins read by the back end."},
	{C2DTwinUpdateSuccess, "Successful twin updates from back end", "Count", Counter, nil, countAggs,
		`tether_twin_operations_total{direction="c2d",operation="update",result="success"}`, "Back-end twin updates and replacements that succeeded."},
	{C2DTwinUpdateFailure, "Failed twin updates from back end", "Count", Counter, nil, countAggs,
		`tether_twin_operations_total{direction="c2d",operation="update",result="failure"}`, "Back-end twin updates and replacements that failed."},
	{C2DTwinUpdateSize, "Size of twin updates from back end", "Bytes", Distribution, nil, distAggs,
		`tether_twin_operation_size_bytes{direction="c2d",operation="update"}`, "Sizes of successful back-end twin patches and replacements."},
	{TwinQueriesSuccess, "Successful twin queries", "Count", Counter, nil, countAggs,
		`tether_twin_queries_total{result="success"}`, "Twin queries (one per page), by result."},
	{TwinQueriesFailure, "Failed twin queries", "Count", Counter, nil, countAggs,
		`tether_twin_queries_total{result="failure"}`, "Twin queries that failed."},
	{TwinQueriesResultSize, "Twin queries result size", "Bytes", Distribution, nil, distAggs,
		"tether_twin_query_result_bytes", "Result page sizes of successful twin queries."},
}

var catalogIndex = func() map[string]*Def {
	m := make(map[string]*Def, len(Catalog))
	for i := range Catalog {
		m[strings.ToLower(Catalog[i].Name)] = &Catalog[i]
	}
	return m
}()

// Lookup finds a metric by name (case-insensitive, as Azure).
func Lookup(name string) (*Def, error) {
	if d, ok := catalogIndex[strings.ToLower(name)]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("%w %q; known metrics: %s", ErrUnknownMetric, name, strings.Join(MetricNames(), ", "))
}

// MetricNames lists the catalog's names.
func MetricNames() []string {
	out := make([]string, len(Catalog))
	for i, d := range Catalog {
		out[i] = d.Name
	}
	return out
}

// Dimension returns the canonical spelling of dimension name of d.
func (d *Def) Dimension(name string) (string, error) {
	for _, dim := range d.Dimensions {
		if strings.EqualFold(dim, name) {
			return dim, nil
		}
	}
	known := "none"
	if len(d.Dimensions) > 0 {
		known = strings.Join(d.Dimensions, ", ")
	}
	return "", fmt.Errorf("%w %q for metric %s; its dimensions: %s", ErrUnknownDimension, name, d.Name, known)
}

// Allows reports whether d supports a, or an error listing what it does.
func (d *Def) Allows(a Aggregation) error {
	for _, x := range d.Aggregations {
		if x == a {
			return nil
		}
	}
	names := make([]string, len(d.Aggregations))
	for i, x := range d.Aggregations {
		names[i] = string(x)
	}
	sort.Strings(names)
	return fmt.Errorf("%w: %s is a %s metric and allows %s, not %q", ErrUnsupportedAggregation, d.Name, d.Kind, strings.Join(names, ", "), a)
}
