package sim

import (
	"maps"
	"sync"
)

// What the devices of one process record about twins and methods, for
// the check at the end (twincheck.go). Like the connection ledger it is
// merged over worker processes; unlike it, it also carries the request
// latencies (as histograms) and the outcome counters of the devices' own
// requests.

// SpanKind is what a Span covers.
type SpanKind uint8

const (
	// SpanOnline: from the CONNECT to the end of the session as the device
	// saw it.
	SpanOnline SpanKind = iota + 1
	// SpanMethods: the hub had the device's $iothub/methods/POST/#
	// subscription and the device answered calls.
	SpanMethods
	// SpanDesired: the hub had the $iothub/twin/PATCH/properties/desired/#
	// subscription and the device read what came.
	SpanDesired
)

// Span is one interval of a device (unix ns, the simulator's clock).
type Span struct {
	Dev  int32    `json:"d"`
	Kind SpanKind `json:"k"`
	From int64    `json:"f"`
	To   int64    `json:"t"`
	// Kept: the subscription came from an earlier session (clean session
	// 0); the device sent no SUBSCRIBE for it in this one.
	Kept bool `json:"kept,omitempty"`
}

// PushSeen is a desired-properties push a device received.
type PushSeen struct {
	Dev     int32  `json:"d"`
	N       int64  `json:"n"` // the driver's update number from the patch; 0 if absent
	Version int64  `json:"v"` // $version of the topic
	At      int64  `json:"t"`
	For     string `json:"for,omitempty"` // the device the update was for, when not this one
	Bad     string `json:"b,omitempty"`   // why the push is malformed (not JSON, versions disagree)
}

// CallSeen is a direct method call a device received.
type CallSeen struct {
	Dev    int32  `json:"d"`
	N      int64  `json:"n"` // the driver's call number from the payload; 0 if absent
	Method string `json:"m"`
	At     int64  `json:"t"`
	Bad    string `json:"b,omitempty"`
}

// RequestStats counts one kind of device twin request (GET or reported
// patch).
type RequestStats struct {
	Sent      int64            `json:"sent"`
	OK        int64            `json:"ok"`                  // answered 200 (GET) or 204 (patch)
	Status    map[string]int64 `json:"status,omitempty"`    // other answers by status
	TimedOut  int64            `json:"timedOut"`            // no answer within the twin timeout while the connection lived
	Late      int64            `json:"late"`                // answered after that
	Abandoned int64            `json:"abandoned"`           // the connection ended first (drop, renewal, hub close)
	Unknown   int64            `json:"unknownRid"`          // answers to a $rid this client never sent or already had answered
	Bad       int64            `json:"bad"`                 // answers that do not parse or go backwards in version
	BadSample string           `json:"badSample,omitempty"` // one of them, for the report
	Latency   Latency          `json:"latency"`             // request → answer, answered ones
}

func (r *RequestStats) merge(o RequestStats) {
	r.Sent += o.Sent
	r.OK += o.OK
	r.TimedOut += o.TimedOut
	r.Late += o.Late
	r.Abandoned += o.Abandoned
	r.Unknown += o.Unknown
	r.Bad += o.Bad
	if r.BadSample == "" {
		r.BadSample = o.BadSample
	}
	for k, v := range o.Status {
		if r.Status == nil {
			r.Status = map[string]int64{}
		}
		r.Status[k] += v
	}
	r.Latency.Merge(o.Latency)
}

// TwinLedger is what a process's devices recorded.
type TwinLedger struct {
	Spans    []Span       `json:"spans,omitempty"`
	Pushes   []PushSeen   `json:"pushes,omitempty"`
	Calls    []CallSeen   `json:"calls,omitempty"`
	Get      RequestStats `json:"get"`
	Reported RequestStats `json:"reported"`
	// Answers: method answers sent; AnswersDropped: answers due while the
	// device was offline or silent (not sent).
	Answers        int64   `json:"answers"`
	AnswersDropped int64   `json:"answersDropped"`
	Paired         []int32 `json:"paired,omitempty"` // devices with a duplicate-id copy
}

// Merge appends o's records.
func (l *TwinLedger) Merge(o *TwinLedger) {
	if o == nil {
		return
	}
	l.Spans = append(l.Spans, o.Spans...)
	l.Pushes = append(l.Pushes, o.Pushes...)
	l.Calls = append(l.Calls, o.Calls...)
	l.Get.merge(o.Get)
	l.Reported.merge(o.Reported)
	l.Answers += o.Answers
	l.AnswersDropped += o.AnswersDropped
	l.Paired = append(l.Paired, o.Paired...)
}

// twinRecorder is a process's TwinLedger behind a lock.
type twinRecorder struct {
	mu sync.Mutex
	l  TwinLedger
}

func (r *twinRecorder) do(f func(l *TwinLedger)) {
	r.mu.Lock()
	f(&r.l)
	r.mu.Unlock()
}

// snapshot is a copy of what was recorded.
func (r *twinRecorder) snapshot() *TwinLedger {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.l
	c.Spans = append([]Span(nil), r.l.Spans...)
	c.Pushes = append([]PushSeen(nil), r.l.Pushes...)
	c.Calls = append([]CallSeen(nil), r.l.Calls...)
	c.Paired = append([]int32(nil), r.l.Paired...)
	c.Get.Status, c.Reported.Status = maps.Clone(r.l.Get.Status), maps.Clone(r.l.Reported.Status)
	c.Get.Latency.Buckets, c.Reported.Latency.Buckets = maps.Clone(r.l.Get.Latency.Buckets), maps.Clone(r.l.Reported.Latency.Buckets)
	return &c
}
