package metrics

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/journal"
)

// opMetrics are the metrics of one kind of operation (category and
// operation name): a count of successes or failures, and, for a success,
// its sizes. direction and operation label the twin families on /metrics.
type opMetrics struct {
	success, failure     string
	sizes                []opSize
	direction, operation string // twin operations only
}

// opSize is a size metric and which of the operation's bodies it counts.
type opSize struct {
	metric   string
	response bool   // ResponseSize, else RequestSize
	part     string // label of tether_direct_method_payload_bytes
}

// operationMetrics maps the journal's operations to IoT Hub's metrics. The
// back end's twin update and replace are both "twin updates from back
// end"; a direct method the device answered is a success whatever its
// status (IoT Hub counts the invocation, not the method's own outcome).
var operationMetrics = map[[2]string]opMetrics{
	{journal.CategoryD2CTwinOperations, journal.OpGet}: {D2CTwinReadSuccess, D2CTwinReadFailure,
		[]opSize{{D2CTwinReadSize, true, ""}}, "d2c", "read"},
	{journal.CategoryD2CTwinOperations, journal.OpUpdate}: {D2CTwinUpdateSuccess, D2CTwinUpdateFailure,
		[]opSize{{D2CTwinUpdateSize, false, ""}}, "d2c", "update"},
	{journal.CategoryC2DTwinOperations, journal.OpRead}: {C2DTwinReadSuccess, C2DTwinReadFailure,
		[]opSize{{C2DTwinReadSize, true, ""}}, "c2d", "read"},
	{journal.CategoryC2DTwinOperations, journal.OpUpdate}: {C2DTwinUpdateSuccess, C2DTwinUpdateFailure,
		[]opSize{{C2DTwinUpdateSize, false, ""}}, "c2d", "update"},
	{journal.CategoryC2DTwinOperations, journal.OpReplace}: {C2DTwinUpdateSuccess, C2DTwinUpdateFailure,
		[]opSize{{C2DTwinUpdateSize, false, ""}}, "c2d", "update"},
	{journal.CategoryTwinQueries, journal.OpQuery}: {TwinQueriesSuccess, TwinQueriesFailure,
		[]opSize{{TwinQueriesResultSize, true, ""}}, "", ""},
	{journal.CategoryDirectMethods, journal.OpSend}: {MethodsSuccess, MethodsFailure,
		[]opSize{{MethodsRequestSize, false, "request"}, {MethodsResponseSize, true, "response"}}, "", ""},
}

// countOps counts one TETHER_OPS message. Operations of a kind this
// version has no metric for (a later version's) only move the position.
func (c *Collector) countOps(m jetstream.Msg, md *jetstream.MsgMetadata) {
	c.ownLag[2].Store(int64(md.NumPending))
	op, err := journal.DecodeOperation(m.Data())
	if err != nil {
		c.log.Warn("metrics: undecodable operation", "subject", m.Subject(), "err", err)
		c.o.Store.Apply(journal.StreamOps, md.Sequence.Stream, func(Adder) {})
		return
	}
	def, known := operationMetrics[[2]string{op.Category, op.OperationName}]
	t := op.Time
	if t.IsZero() {
		t = md.Timestamp
	}
	c.o.Store.Apply(journal.StreamOps, md.Sequence.Stream, func(add Adder) {
		if known {
			def.add(add, t, op)
		}
	})
	if known {
		c.prom.observeOperation(def, op)
	}
}

// add adds op's samples: one to its success or failure count, and its
// sizes when it succeeded.
func (d opMetrics) add(add Adder, t time.Time, op journal.Operation) {
	if op.Failed() {
		add(d.failure, t, 1)
		return
	}
	add(d.success, t, 1)
	for _, s := range d.sizes {
		add(s.metric, t, float64(s.size(op)))
	}
}

func (s opSize) size(op journal.Operation) int64 {
	if s.response {
		return op.ResponseSize
	}
	return op.RequestSize
}

// observeOperation counts op on /metrics.
func (p *promMetrics) observeOperation(d opMetrics, op journal.Operation) {
	result := "success"
	if op.Failed() {
		result = "failure"
	}
	switch op.Category {
	case journal.CategoryD2CTwinOperations, journal.CategoryC2DTwinOperations:
		p.twinOps.WithLabelValues(d.direction, d.operation, result).Inc()
		if !op.Failed() {
			p.twinSize.WithLabelValues(d.direction, d.operation).Observe(float64(d.sizes[0].size(op)))
		}
	case journal.CategoryDirectMethods:
		p.methodCalls.WithLabelValues(result).Inc()
		if !op.Failed() {
			for _, s := range d.sizes {
				p.methodBytes.WithLabelValues(s.part).Observe(float64(s.size(op)))
			}
		}
	case journal.CategoryTwinQueries:
		p.twinQueries.WithLabelValues(result).Inc()
		if !op.Failed() {
			p.queryBytes.Observe(float64(d.sizes[0].size(op)))
		}
	}
}
