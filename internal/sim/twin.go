package sim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/mqttclient"
)

// The device side of twins and direct methods, as an app on an Azure IoT
// device SDK uses them (azure-sdk-wire.md §3): no SUBSCRIBE at connect;
// the app's start-up registers its method handler (SUBSCRIBE
// $iothub/methods/POST/#), reads its twin (SUBSCRIBE $iothub/twin/res/#,
// GET), registers its desired-properties handler (SUBSCRIBE
// $iothub/twin/PATCH/properties/desired/#, before or after the GET as
// the profile says) and reports its state; after that it reports every
// --reported-every, applies desired pushes, and answers the "echo" method
// after --method-delay. It has no handler for any other method, so those
// calls go unanswered (504101), as with the SDKs. After a reconnect the
// profile decides whether the SDK subscribes and GETs again.
//
// The SDKs do not look at SUBACKs; neither does the client here. A
// subscription counts as in effect at the hub once the answer to a
// request sent after it arrived (the hub handles a connection's packets
// in order): the GET's, the first reported patch's, or a PINGRESP. From
// then until the device disconnects, goes silent or loses the connection
// the device is ready for calls and pushes (SpanMethods, SpanDesired);
// the check at the end expects the hub to have delivered everything sent
// inside those spans.

// Methods the simulated app knows: methodEcho answers with its payload;
// methodUnhandled has no handler.
const (
	methodEcho      = "echo"
	methodUnhandled = "unhandled"
)

// subBits is a set of the twin and method subscriptions.
type subBits uint8

const (
	subMethods subBits = 1 << iota
	subTwinRes
	subDesired
)

var subFilters = []struct {
	bit    subBits
	filter string
}{
	{subMethods, "$iothub/methods/POST/#"},
	{subTwinRes, "$iothub/twin/res/#"},
	{subDesired, "$iothub/twin/PATCH/properties/desired/#"},
}

// Topic prefixes of what the hub sends.
const (
	topicTwinRes    = "$iothub/twin/res/"
	topicDesired    = "$iothub/twin/PATCH/properties/desired/"
	topicMethodPost = "$iothub/methods/POST/"
)

type reqKind uint8

const (
	reqGet reqKind = iota + 1
	reqPatch
)

type twinReq struct {
	kind     reqKind
	sent     time.Time
	confirms subBits // subscriptions sent before it and not yet known to be in effect
}

// establishSlack: the hub marks a session established just after writing
// its CONNACK, so subscriptions kept from an earlier session count as in
// effect a moment after the device read the CONNACK.
const establishSlack = 100 * time.Millisecond

// twinClient is one client's (a device's, or its duplicate-id copy's) use
// of the twin and methods. The session goroutine and the connection's
// reader both use it; mu serialises them, and is held while writing so
// that what a request confirms matches what went out before it.
type twinClient struct {
	d   *device
	tag string // $rid prefix: the copies of a duplicate-id pair ask apart

	mu              sync.Mutex
	conn            *mqttclient.Conn // the session's connection while it can send; nil otherwise
	silent          bool
	closeDue        bool    // the hub is about to close the session (token expiry, disabled)
	online          int64   // this session's CONNECT (unix ns)
	methodsFrom     int64   // when this session became ready for calls; 0: not (yet)
	desiredFrom     int64   // … for desired pushes
	keptFrom        subBits // subscriptions in effect from the CONNACK on, not subscribed again
	enabled         subBits
	confirmed       subBits // known in effect at the hub (kept over sessions: clean session 0)
	sent            subBits // subscribed in this session
	pings           []subBits
	rid             uint64
	pending         map[string]twinReq
	expired         map[string]bool // timed out; an answer to them is late
	gotTwin         bool
	desiredVersion  int64
	reportedVersion int64
	reportSeq       int64
	nextReport      time.Duration // offset from the run's start
}

func newTwinClient(d *device) *twinClient {
	t := &twinClient{d: d, pending: map[string]twinReq{}, expired: map[string]bool{}}
	if d.twin {
		t.tag = "b"
	}
	if every := d.f.cfg.ReportedEvery; every > 0 {
		t.nextReport = d.startAt + time.Duration(d.rnd.Float64()*float64(every)) + every
	}
	return t
}

// begin starts a session: the app's start-up on the first, what the SDK
// does after a reconnect on later ones.
func (t *twinClient) begin(conn *mqttclient.Conn) {
	f := t.d.f
	p := f.prof
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conn, t.silent, t.closeDue, t.online, t.sent, t.pings = conn, false, false, conn.ConnectSent.UnixNano(), 0, t.pings[:0]
	t.methodsFrom, t.desiredFrom = 0, 0
	t.markReady(time.Now().Add(establishSlack))
	t.keptFrom = t.confirmed
	toSub := t.enabled &^ t.confirmed // never acknowledged: the SDK tries again
	if t.enabled == 0 {
		if f.cfg.Methods {
			t.enabled |= subMethods
		}
		if f.cfg.Twin {
			t.enabled |= subTwinRes
			if !p.DesiredAfterGet {
				t.enabled |= subDesired
			}
		}
		toSub = t.enabled
	} else if p.Resubscribe {
		toSub = t.enabled
	}
	t.subscribe(toSub)
	t.keptFrom &^= toSub
	switch {
	case f.cfg.Twin && (!t.gotTwin || p.RegetTwin):
		t.request(reqGet, nil)
	case t.sent&^t.confirmed != 0:
		t.pingLocked(t.sent &^ t.confirmed)
	}
}

// markReady opens the readiness spans of confirmed subscriptions.
func (t *twinClient) markReady(at time.Time) {
	if t.conn == nil || t.silent || t.closeDue {
		return
	}
	if t.confirmed&subMethods != 0 && t.methodsFrom == 0 {
		t.methodsFrom = at.UnixNano()
	}
	if t.confirmed&subDesired != 0 && t.desiredFrom == 0 {
		t.desiredFrom = at.UnixNano()
	}
}

func (t *twinClient) subscribe(bits subBits) {
	for _, s := range subFilters {
		if bits&s.bit != 0 && t.conn != nil {
			if err := t.conn.Subscribe(s.filter, 0); err == nil {
				t.sent |= s.bit
			}
		}
	}
}

// request sends a GET or a reported patch.
func (t *twinClient) request(kind reqKind, body []byte) {
	if t.conn == nil || t.silent {
		return
	}
	f := t.d.f
	t.rid++
	rid := t.tag + strconv.FormatUint(t.rid, 10)
	topic := "$iothub/twin/GET/?$rid=" + rid
	if kind == reqPatch {
		topic = "$iothub/twin/PATCH/properties/reported/?$rid=" + rid
	}
	t.pending[rid] = twinReq{kind: kind, sent: time.Now(), confirms: t.sent &^ t.confirmed}
	if _, err := t.conn.Publish(topic, 0, body); err != nil {
		delete(t.pending, rid)
		return
	}
	f.stats.TwinRequests.Add(1)
	f.twins.do(func(l *TwinLedger) { t.stats(l, kind).Sent++ })
}

func (t *twinClient) stats(l *TwinLedger, kind reqKind) *RequestStats {
	if kind == reqGet {
		return &l.Get
	}
	return &l.Reported
}

// report sends a reported-properties patch, as an app reports its state
// and the desired version it applied.
func (t *twinClient) report() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reportLocked()
}

func (t *twinClient) reportLocked() {
	t.reportSeq++
	temp := 18 + float64(t.reportSeq%7)*0.5 // not d.rnd: the reader may call this
	body := fmt.Appendf(nil, `{"sim":{"seq":%d,"desiredVersion":%d,"temp":%.1f}}`, t.reportSeq, t.desiredVersion, temp)
	t.request(reqPatch, body)
}

// ping sends a keep-alive PINGREQ; its PINGRESP confirms nothing.
func (t *twinClient) ping() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pingLocked(0)
}

func (t *twinClient) pingLocked(confirms subBits) error {
	if t.conn == nil {
		return nil
	}
	t.pings = append(t.pings, confirms)
	return t.conn.Ping()
}

func (t *twinClient) onPingresp() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pings) == 0 {
		return
	}
	bits := t.pings[0]
	t.pings = t.pings[1:]
	if bits != 0 {
		t.confirmed |= bits
		t.markReady(time.Now())
	}
}

// closing: the device is about to end the session (DISCONNECT or drop)
// or go silent; it takes no more calls or pushes on it.
func (t *twinClient) closing(silent bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.endReady(time.Now().UnixNano())
	if silent {
		t.silent = true
	} else {
		t.conn = nil
	}
}

// hubWillClose: the hub is about to close the session (the token
// expires, the device is being disabled). The device still answers what
// comes, but nothing sent from now on is certain to reach it, so the
// readiness spans end here rather than when the close is noticed.
func (t *twinClient) hubWillClose() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.endReady(time.Now().UnixNano())
	t.closeDue = true
}

func (t *twinClient) endReady(now int64) {
	f := t.d.f
	dev := int32(t.d.idx)
	f.twins.do(func(l *TwinLedger) {
		if t.methodsFrom != 0 {
			l.Spans = append(l.Spans, Span{Dev: dev, Kind: SpanMethods, From: t.methodsFrom, To: now, Kept: t.keptFrom&subMethods != 0})
		}
		if t.desiredFrom != 0 {
			l.Spans = append(l.Spans, Span{Dev: dev, Kind: SpanDesired, From: t.desiredFrom, To: now, Kept: t.keptFrom&subDesired != 0})
		}
	})
	t.methodsFrom, t.desiredFrom = 0, 0
}

// end closes the session's records: its spans, and the requests it
// never had answered.
func (t *twinClient) end() {
	f := t.d.f
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.endReady(now.UnixNano())
	t.conn = nil
	dev := int32(t.d.idx)
	f.twins.do(func(l *TwinLedger) {
		l.Spans = append(l.Spans, Span{Dev: dev, Kind: SpanOnline, From: t.online, To: now.UnixNano()})
		for rid, r := range t.pending {
			if now.Sub(r.sent) > f.cfg.TwinTimeout {
				t.stats(l, r.kind).TimedOut++
				t.expired[rid] = true
			} else {
				t.stats(l, r.kind).Abandoned++
			}
		}
	})
	clear(t.pending)
}

// sweep moves requests older than the twin timeout to the timed-out.
func (t *twinClient) sweep() {
	f := t.d.f
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for rid, r := range t.pending {
		if now.Sub(r.sent) > f.cfg.TwinTimeout {
			delete(t.pending, rid)
			t.expired[rid] = true
			f.twins.do(func(l *TwinLedger) { t.stats(l, r.kind).TimedOut++ })
		}
	}
}

// onPublish takes what the hub sends on the twin and method topics
// (called by the connection's reader; payload is only valid during the
// call).
func (t *twinClient) onPublish(topic string, payload []byte) {
	switch {
	case strings.HasPrefix(topic, topicTwinRes):
		t.onResponse(topic, payload)
	case strings.HasPrefix(topic, topicDesired):
		t.onDesired(topic, payload)
	case strings.HasPrefix(topic, topicMethodPost):
		t.onMethod(topic, payload)
	}
}

// topicQuery splits "…/?a=1&b=2" into the part before "/?" and its
// parameters.
func topicQuery(topic string) (string, url.Values) {
	path, q, _ := strings.Cut(topic, "/?")
	v, _ := url.ParseQuery(q)
	return path, v
}

// twinAnswer is what a GET answer must hold.
type twinAnswer struct {
	Desired  map[string]json.RawMessage `json:"desired"`
	Reported map[string]json.RawMessage `json:"reported"`
}

func (t *twinClient) onResponse(topic string, payload []byte) {
	f := t.d.f
	now := time.Now()
	path, q := topicQuery(topic)
	status, serr := strconv.Atoi(strings.TrimPrefix(path, topicTwinRes))
	rid := q.Get("$rid")
	f.stats.TwinAnswers.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	req, ok := t.pending[rid]
	if !ok {
		late := t.expired[rid]
		delete(t.expired, rid)
		f.twins.do(func(l *TwinLedger) {
			s := &l.Get // the request is gone: its kind by the status
			if status == 204 {
				s = &l.Reported
			}
			if late {
				s.Late++
			} else {
				s.Unknown++
				if s.BadSample == "" {
					s.BadSample = fmt.Sprintf("%s got an answer to $rid %q it did not ask (or had answered): %s", t.d.id, rid, topic)
				}
			}
		})
		return
	}
	delete(t.pending, rid)
	var bad string
	okStatus := false
	switch {
	case serr != nil:
		bad = "status in the topic is not a number: " + topic
	case req.kind == reqGet && status == 200:
		var a twinAnswer
		var v int64
		if err := json.Unmarshal(payload, &a); err != nil || a.Desired == nil || a.Reported == nil {
			bad = fmt.Sprintf("GET answer is not {\"desired\":…,\"reported\":…}: %.120s", payload)
		} else if err := json.Unmarshal(a.Desired["$version"], &v); err != nil {
			bad = fmt.Sprintf("GET answer has no desired $version: %.120s", payload)
		} else {
			okStatus = true
			t.desiredVersion = max(t.desiredVersion, v)
		}
	case req.kind == reqPatch && status == 204:
		v, err := strconv.ParseInt(q.Get("$version"), 10, 64)
		switch {
		case err != nil:
			bad = "reported patch answer without a $version: " + topic
		case v <= t.reportedVersion:
			bad = fmt.Sprintf("reported version went back from %d to %d (%s)", t.reportedVersion, v, topic)
		default:
			okStatus = true
			t.reportedVersion = v
		}
	}
	f.twins.do(func(l *TwinLedger) {
		s := t.stats(l, req.kind)
		switch {
		case bad != "":
			s.Bad++
			if s.BadSample == "" {
				s.BadSample = t.d.id + ": " + bad
			}
		case okStatus:
			s.OK++
			s.Latency.Add(now.Sub(req.sent))
		default:
			if s.Status == nil {
				s.Status = map[string]int64{}
			}
			s.Status[strconv.Itoa(status)]++
		}
	})
	if req.confirms != 0 {
		t.confirmed |= req.confirms
		t.markReady(now)
	}
	if req.kind == reqGet && okStatus && !t.gotTwin {
		// The app has its twin: it registers its desired handler (if it
		// had not) and reports its state.
		t.gotTwin = true
		if t.enabled&subDesired == 0 && f.cfg.Twin {
			t.enabled |= subDesired
			t.subscribe(subDesired)
		}
		t.reportLocked()
	}
}

// desiredPush is the part of a push the check reads: the driver's update
// {"sim":{"n":…,"dev":…}} and the push's own $version.
type desiredPush struct {
	Sim *struct {
		N   int64  `json:"n"`
		Dev string `json:"dev"`
	} `json:"sim"`
	Version *int64 `json:"$version"`
}

func (t *twinClient) onDesired(topic string, payload []byte) {
	f := t.d.f
	now := time.Now().UnixNano()
	_, q := topicQuery(topic)
	v, verr := strconv.ParseInt(q.Get("$version"), 10, 64)
	var p desiredPush
	seen := PushSeen{Dev: int32(t.d.idx), Version: v, At: now}
	switch err := json.Unmarshal(payload, &p); {
	case verr != nil:
		seen.Bad = "no $version in the topic: " + topic
	case err != nil:
		seen.Bad = fmt.Sprintf("not JSON: %.80s", payload)
	case p.Version == nil || *p.Version != v:
		seen.Bad = fmt.Sprintf("the body's $version is not the topic's %d: %.80s", v, payload)
	}
	if p.Sim != nil {
		seen.N = p.Sim.N
		if p.Sim.Dev != t.d.id {
			seen.For = p.Sim.Dev
		}
	}
	f.stats.DesiredPushes.Add(1)
	t.mu.Lock()
	if seen.Bad == "" && seen.For == "" {
		t.desiredVersion = max(t.desiredVersion, v) // applied
	}
	t.mu.Unlock()
	f.twins.do(func(l *TwinLedger) { l.Pushes = append(l.Pushes, seen) })
}

// methodPayload is the driver's call payload.
type methodPayload struct {
	N   int64  `json:"n"`
	Dev string `json:"dev"`
}

func (t *twinClient) onMethod(topic string, payload []byte) {
	f := t.d.f
	path, q := topicQuery(topic)
	name := strings.TrimPrefix(path, topicMethodPost)
	rid := q.Get("$rid")
	seen := CallSeen{Dev: int32(t.d.idx), Method: name, At: time.Now().UnixNano()}
	var p methodPayload
	switch {
	case json.Unmarshal(payload, &p) != nil:
		seen.Bad = fmt.Sprintf("payload is not the driver's: %.80s", payload)
	case p.Dev != t.d.id:
		seen.Bad = "a call for " + p.Dev
	case rid == "":
		seen.Bad = "no $rid in " + topic
	}
	seen.N = p.N
	f.stats.MethodCalls.Add(1)
	f.twins.do(func(l *TwinLedger) { l.Calls = append(l.Calls, seen) })
	if name != methodEcho || rid == "" {
		return // no handler registered for it: the SDK does not answer
	}
	echo := payload
	if !json.Valid(echo) {
		echo = []byte("null")
	}
	answer := fmt.Appendf(nil, `{"echo":%s,"dev":%q}`, echo, t.d.id)
	send := func() {
		t.mu.Lock()
		conn, silent := t.conn, t.silent
		t.mu.Unlock()
		if conn == nil || silent {
			f.twins.do(func(l *TwinLedger) { l.AnswersDropped++ })
			return
		}
		if _, err := conn.Publish("$iothub/methods/res/200/?$rid="+rid, 0, answer); err != nil {
			f.twins.do(func(l *TwinLedger) { l.AnswersDropped++ })
			return
		}
		f.stats.MethodAnswers.Add(1)
		f.twins.do(func(l *TwinLedger) { l.Answers++ })
	}
	if d := f.cfg.MethodDelay; d > 0 {
		time.AfterFunc(d, send)
	} else {
		send()
	}
}
