package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Direct methods (reference/iothub-facts.md §5.4): the hub publishes the
// call on $iothub/methods/POST/{name}/?$rid={rid} to a device subscribed
// to $iothub/methods/POST/#, and the device answers on
// $iothub/methods/res/{status}/?$rid={rid}. A call belongs to the device,
// not to one connection: a device that renews its SAS token mid-call
// answers on its new connection, and that answer counts.

// Direct method errors, with IoT Hub's codes.
var (
	// ErrDeviceNotOnline: the device is not connected, or has not
	// subscribed to methods, within the call's connect timeout (404103).
	ErrDeviceNotOnline = errors.New("the device is not connected or has not subscribed to direct methods")
	// ErrMethodTimeout: the device did not answer within the response
	// timeout (504101).
	ErrMethodTimeout = errors.New("the device did not answer the direct method in time")
	// ErrMethodThrottled: too many calls are in flight, to the device or
	// through the hub (429).
	ErrMethodThrottled = errors.New("too many direct method calls in flight")
)

// Bounds on calls waiting for their answers.
const (
	// MethodsPerDevice is how many calls one device may have in flight.
	MethodsPerDevice = 16
	// MethodsPerHub is how many calls the hub has in flight at most.
	MethodsPerHub = 10_000
)

// MethodCall is one direct method invocation.
type MethodCall struct {
	Name    string
	Payload []byte // JSON, sent as is
	// ResponseTimeout bounds the wait for the device's answer once the
	// call was sent; ConnectTimeout how long to wait for the device to
	// be online and subscribed first (0: not at all).
	ResponseTimeout, ConnectTimeout time.Duration
}

// MethodResult is the device's answer.
type MethodResult struct {
	Status  int
	Payload []byte
}

// methodCalls tracks calls in flight and callers waiting for a device to
// come online.
type methodCalls struct {
	mu        sync.Mutex
	next      uint64
	pending   map[string]*pendingCall  // by $rid
	perDevice map[string]int           // calls in flight per device
	online    map[string]chan struct{} // closed when the device may take calls
}

type pendingCall struct {
	deviceID string
	answer   chan MethodResult // buffered: the answer never blocks the reader
}

func newMethodCalls() *methodCalls {
	return &methodCalls{pending: map[string]*pendingCall{}, perDevice: map[string]int{}, online: map[string]chan struct{}{}}
}

// begin reserves an in-flight slot and a request id.
func (m *methodCalls) begin(deviceID string) (string, *pendingCall, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) >= MethodsPerHub {
		return "", nil, fmt.Errorf("%w: the hub has %d calls waiting for answers", ErrMethodThrottled, len(m.pending))
	}
	if m.perDevice[deviceID] >= MethodsPerDevice {
		return "", nil, fmt.Errorf("%w: device %q has %d calls waiting for answers", ErrMethodThrottled, deviceID, MethodsPerDevice)
	}
	m.next++
	rid := strconv.FormatUint(m.next, 16)
	c := &pendingCall{deviceID: deviceID, answer: make(chan MethodResult, 1)}
	m.pending[rid] = c
	m.perDevice[deviceID]++
	return rid, c, nil
}

func (m *methodCalls) finish(rid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.pending[rid]
	if c == nil {
		return
	}
	delete(m.pending, rid)
	if m.perDevice[c.deviceID]--; m.perDevice[c.deviceID] <= 0 {
		delete(m.perDevice, c.deviceID)
	}
}

// answer delivers a device's answer to the call it belongs to; false if
// no call of that device waits under rid.
func (m *methodCalls) answer(deviceID, rid string, r MethodResult) bool {
	m.mu.Lock()
	c := m.pending[rid]
	m.mu.Unlock()
	if c == nil || c.deviceID != deviceID {
		return false
	}
	select {
	case c.answer <- r:
		return true
	default: // answered already
		return false
	}
}

// onlineSignal returns a channel closed the next time the device may take
// calls (see wakeMethodCallers).
func (m *methodCalls) onlineSignal(deviceID string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.online[deviceID]
	if ch == nil {
		ch = make(chan struct{})
		m.online[deviceID] = ch
	}
	return ch
}

// wakeMethodCallers tells callers waiting for the device that it may now
// take calls (it connected with, or made, a methods subscription).
func (b *Broker) wakeMethodCallers(deviceID string) {
	m := b.methods
	m.mu.Lock()
	if ch := m.online[deviceID]; ch != nil {
		close(ch)
		delete(m.online, deviceID)
	}
	m.mu.Unlock()
}

// methodTarget is the device's session if it can take a call now.
func (b *Broker) methodTarget(deviceID string) *session {
	s := b.table.live(deviceID)
	if s == nil || !s.established.Load() || b.table.subscribed(s)&subMethods == 0 {
		return nil
	}
	return s
}

// InvokeMethod calls a direct method on the device and waits for its
// answer. Errors: ErrDeviceNotOnline, ErrMethodTimeout, ErrMethodThrottled,
// or ctx's.
func (b *Broker) InvokeMethod(ctx context.Context, deviceID string, call MethodCall) (MethodResult, error) {
	rid, c, err := b.methods.begin(deviceID)
	if err != nil {
		return MethodResult{}, err
	}
	defer b.methods.finish(rid)

	s, err := b.awaitMethodTarget(ctx, deviceID, call.ConnectTimeout)
	if err != nil {
		return MethodResult{}, err
	}
	s.sendPublish("$iothub/methods/POST/"+call.Name+"/?$rid="+rid, call.Payload)
	t := time.NewTimer(call.ResponseTimeout)
	defer t.Stop()
	select {
	case r := <-c.answer:
		return r, nil
	case <-t.C:
		return MethodResult{}, fmt.Errorf("%w (%s)", ErrMethodTimeout, call.ResponseTimeout)
	case <-ctx.Done():
		return MethodResult{}, ctx.Err()
	}
}

// awaitMethodTarget waits up to wait for the device to be online and
// subscribed to methods.
func (b *Broker) awaitMethodTarget(ctx context.Context, deviceID string, wait time.Duration) (*session, error) {
	var deadline <-chan time.Time
	for {
		online := b.methods.onlineSignal(deviceID) // before looking: a wake in between is not lost
		if s := b.methodTarget(deviceID); s != nil {
			return s, nil
		}
		if wait <= 0 {
			return nil, ErrDeviceNotOnline
		}
		if deadline == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-online:
		case <-deadline:
			return nil, fmt.Errorf("%w (waited %s)", ErrDeviceNotOnline, wait)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.stopped:
			return nil, ErrDeviceNotOnline
		}
	}
}

// methodResponse takes a device's answer to a direct method call.
func (s *session) methodResponse(pk *packets.Packet) {
	if pk.FixedHeader.Qos == 1 {
		s.send(appendPuback(nil, pk.PacketID))
	}
	rest := strings.TrimPrefix(pk.TopicName, "$iothub/methods/res/")
	statusText, _, _ := strings.Cut(rest, "/")
	status, err := strconv.Atoi(statusText)
	rid, ok := topicParam(pk.TopicName, "$rid")
	switch {
	case err != nil:
		s.b.log.Warn("direct method answer dropped: the status in its topic is not a number", "device", s.deviceID(), "topic", strings.Clone(pk.TopicName))
	case !ok || rid == "":
		s.b.log.Warn("direct method answer dropped: its topic has no $rid", "device", s.deviceID(), "topic", strings.Clone(pk.TopicName))
	case !s.b.methods.answer(s.deviceID(), rid, MethodResult{Status: status, Payload: append([]byte(nil), pk.Payload...)}):
		s.b.log.Info("direct method answer dropped: no call of this device waits for it (timed out or answered)", "device", s.deviceID(), "rid", strings.Clone(rid))
	}
}
