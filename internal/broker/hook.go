package broker

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/telemetry"
)

// Lock timings: how long a CONNECT waits for a concurrent one with the same
// id, and the safety release when no later hook runs (failed CONNACK write).
const (
	lockWait = 10 * time.Second
	lockHold = 15 * time.Second
)

// hook is the mochi glue. Per-connection state lives in conns, keyed by
// mochi's client, from OnConnect until OnDisconnect.
type hook struct {
	mqtt.HookBase
	b     *Broker
	conns sync.Map // *mqtt.Client → *connState
	// current is each client id's connection with a live session, Tether's
	// own view: mochi's client map can lose an entry (see OnDisconnect).
	// An entry stays until its session's end is recorded (endSession).
	current sync.Map // client id → *connState
}

var _ mqtt.Hook = (*hook)(nil)

type connState struct {
	cl      *mqtt.Client
	release func()
	id      identity
	session *presence.Session
	ended   chan struct{} // closed once endSession has recorded the end

	mu       sync.Mutex
	kick     presence.Reason // set before the hub closes the connection itself
	aclTopic string          // a publish the ACL refused
	timer    *time.Timer     // token expiry
}

func (s *connState) setKick(r presence.Reason) {
	s.mu.Lock()
	if s.kick == presence.ReasonNone {
		s.kick = r
	}
	s.mu.Unlock()
}

func (h *hook) ID() string { return "tether" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnSessionEstablish, mqtt.OnSessionEstablished,
		mqtt.OnDisconnect, mqtt.OnACLCheck, mqtt.OnPublish,
	}, []byte{b})
}

func (h *hook) state(cl *mqtt.Client) *connState {
	if v, ok := h.conns.Load(cl); ok {
		return v.(*connState)
	}
	return nil
}

func protocolOf(listener string) string {
	if listener == listenerWS {
		return protoMQTTWS
	}
	return protoMQTT
}

// OnConnect takes the device lock and authenticates. A refusal is answered
// here with our own CONNACK code (mochi's auth path only knows one code)
// and recorded; returning an error makes mochi close the socket.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if tc, ok := cl.Net.Conn.(*trackedConn); ok {
		tc.seen.Store(true)
		tc.setKeepAlive(pk.Connect.Keepalive)
	}
	b := h.b
	release, ok := b.locks.acquire(cl.ID, lockWait, lockHold)
	if !ok {
		ref := &refusal{v3: packets.Err3ServerUnavailable, v5: packets.ErrServerBusy,
			reason: presence.ReasonServerError, result: presence.ResultTimeout,
			detail: "another CONNECT for this device id did not finish in time"}
		h.refuse(cl, pk, identity{deviceID: cl.ID}, ref)
		return ref
	}
	id, ref := b.authenticate(cl.ID, pk.Connect.Username, pk.Connect.Password, b.opts.Now())
	if ref != nil {
		release()
		if id.deviceID == "" {
			id.deviceID = cl.ID
		}
		h.refuse(cl, pk, id, ref)
		return ref
	}
	h.conns.Store(cl, &connState{cl: cl, release: release, id: id, ended: make(chan struct{})})
	if tc, ok := cl.Net.Conn.(*trackedConn); ok {
		tc.abandon = func(err error) { h.abandoned(cl, err) }
	}
	return nil
}

// refuse records the refusal, then answers it: recording first keeps the
// events of one client's successive attempts in order.
func (h *hook) refuse(cl *mqtt.Client, pk packets.Packet, id identity, ref *refusal) {
	h.b.opts.Presence.Refuse(presence.ConnectionEvent{
		DeviceID: id.deviceID, ModuleID: id.moduleID, SDKVersion: id.sdkVersion,
		Protocol: protocolOf(cl.Net.Listener), ProtocolVersion: pk.ProtocolVersion,
		MaskedIP: maskIP(cl.Net.Remote), Reason: ref.reason, Result: ref.result, Detail: ref.detail,
		CleanSession: pk.Connect.Clean, KeepAliveSeconds: pk.Connect.Keepalive,
	})
	code := ref.v5
	if pk.ProtocolVersion < 5 {
		code = ref.v3
	}
	_ = h.b.srv.SendConnack(cl, code, false, nil)
}

// OnConnectAuthenticate accepts what OnConnect accepted.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return h.state(cl) != nil
}

// recordWait bounds how long a CONNACK waits for the journal to store the
// device's connected event. Past it the CONNACK goes anyway: when the hub
// is that overloaded, refusing would make every device retry and add load
// (seen with tether sim: thousands of connects refused in a row on a
// saturated machine), so durability of those few connects is given up
// instead, and logged.
const recordWait = 5 * time.Second

// OnSessionEstablish runs just before mochi sends the CONNACK: the device
// is connected once its connected event is durable in the journal, so a
// device that has its CONNACK is never missing from the event stream, even
// if the hub is killed a moment later. If the journal refuses the event
// (it is closing), the connection is closed instead of acknowledged (the
// failed CONNACK write then ends the session through abandoned).
func (h *hook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	st := h.state(cl)
	if st == nil {
		return
	}
	b := h.b
	h.endOvertaken(cl)
	h.current.Store(cl.ID, st)
	recorded := make(chan error, 1)
	st.session = &presence.Session{
		ID: presence.NewSessionID(), DeviceID: st.id.deviceID, ModuleID: st.id.moduleID,
		Protocol: protocolOf(cl.Net.Listener), ProtocolVersion: cl.Properties.ProtocolVersion,
		MaskedIP: maskIP(cl.Net.Remote), SDKVersion: st.id.sdkVersion, AuthType: st.id.authType,
		TokenExpiry: st.id.tokenExpiry, ConnectedAt: b.opts.Now(),
		CleanSession: pk.Connect.Clean, KeepAliveSeconds: pk.Connect.Keepalive,
		Recorded: func(err error) { recorded <- err },
	}
	b.opts.Presence.Connect(st.session)
	t := time.NewTimer(recordWait)
	defer t.Stop()
	select {
	case err := <-recorded:
		if err != nil {
			b.log.Error("closing a connection whose connected event the journal did not store", "device", st.id.deviceID, "err", err)
			st.setKick(presence.ReasonServerError)
			_ = cl.Net.Conn.Close()
		}
	case <-t.C:
		// Logged at the 1st, 2nd, 4th, 8th… such connect: one line per
		// connect would add to an overload that is already there.
		if n := b.slowRecords.Add(1); n&(n-1) == 0 {
			b.log.Warn("journal slow: acknowledging connects before their events are stored", "device", st.id.deviceID, "waited", recordWait, "total", n)
		}
	}
}

// endOvertaken records the end of the device's previous connection when a
// reconnect has overtaken it. mochi closes the socket (client DISCONNECT,
// read error, the hub's own kick) before it runs OnDisconnect on that
// connection's goroutine, so a quick client's next CONNECT can arrive
// first; the session has ended and must be recorded with its own cause,
// not as replaced by this connection (a 400027 takeover, which would also
// hide a SAS renewal from the renewal filter). A connection that is still
// open is left to be taken over, after a short grace if it has input it
// has not acted on yet (pending.go).
func (h *hook) endOvertaken(cl *mqtt.Client) {
	v, ok := h.current.Load(cl.ID)
	if !ok {
		return
	}
	prev := v.(*connState)
	old := prev.cl
	tc, ok := old.Net.Conn.(*trackedConn)
	if old == cl || !ok {
		return
	}
	if h.state(old) == nil {
		// Its end is being recorded right now (OnDisconnect): wait for
		// that, or this connect would find the session still current in
		// presence and record it as taken over.
		h.markOvertaken(cl, old, tc)
		prev.waitEnded()
		return
	}
	if !tc.closed.Load() && !tc.awaitInput() {
		return
	}
	h.markOvertaken(cl, old, tc)
	// mochi stores the stop cause right after closing the socket.
	pollFor(100*time.Millisecond, old.Closed)
	h.endSession(old, nil)
	prev.waitEnded() // OnDisconnect may have started it first
}

// markOvertaken prepares old for the takeover by cl that follows.
// mochi's inheritClientSession marks old taken over, and old's
// OnDisconnect waits for that mark. If mochi's map lost old, it goes back
// in so that cl can take it over and replace it.
func (h *hook) markOvertaken(cl, old *mqtt.Client, tc *trackedConn) {
	switch m, ok := h.b.srv.Clients.Get(cl.ID); {
	case !ok:
		h.b.srv.Clients.Add(old)
		tc.overtaken.Store(true)
	case m == old:
		tc.overtaken.Store(true)
	}
}

// waitEnded waits (bounded) until the session's end is recorded.
func (s *connState) waitEnded() {
	select {
	case <-s.ended:
	case <-time.After(time.Second):
	}
}

// OnSessionEstablished runs after the CONNACK: the token-expiry watch
// starts and the next CONNECT with this id may proceed.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	st := h.state(cl)
	if st == nil || st.session == nil {
		return
	}
	b := h.b
	// IoT Hub cannot re-authenticate an MQTT connection: when the token
	// expires, the hub closes it (logged 401003 then 404104).
	expire := func() {
		st.setKick(presence.ReasonTokenExpired)
		_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
	}
	st.mu.Lock()
	st.timer = time.AfterFunc(max(st.id.tokenExpiry.Sub(b.opts.Now()), 0), expire)
	st.mu.Unlock()
	st.release()
}

// abandoned ends a connection that mochi dropped after OnSessionEstablish
// without any later hook: a failed CONNACK write or inflight resend makes
// attachClient return early. Without this the presence session, the device
// lock (until its safety timer) and mochi's client entry would outlive the
// socket. The listener calls it on the connection's goroutine once mochi
// has returned.
func (h *hook) abandoned(cl *mqtt.Client, err error) {
	if h.state(cl) == nil {
		return // OnDisconnect ran: the normal path
	}
	if err == nil {
		err = errors.New("connection ended before the session was established")
	}
	h.endSession(cl, err)
	expire := (cl.Properties.ProtocolVersion == 5 && cl.Properties.Props.SessionExpiryInterval == 0) ||
		(cl.Properties.ProtocolVersion < 5 && cl.Properties.Clean)
	if cur, ok := h.b.srv.Clients.Get(cl.ID); ok && cur == cl && expire {
		cl.ClearInflights()
		h.b.srv.UnsubscribeClient(cl)
		h.b.srv.Clients.Delete(cl.ID)
	}
}

// OnDisconnect ends the session in presence with its classified cause.
//
// For a connection a reconnect has overtaken it first waits until mochi
// has marked it taken over. Right after this hook mochi deletes a clean
// session's client id from its client map unless the client is marked;
// the reconnect marks it in inheritClientSession and then adds itself
// under the same id, so without the wait a delete that lands after that
// add removes the new connection from the map (its C2D messages and the
// next takeover would no longer find it).
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	if testHookOnDisconnect != nil {
		testHookOnDisconnect(cl.ID)
	}
	h.endSession(cl, err)
	if tc, ok := cl.Net.Conn.(*trackedConn); ok && tc.overtaken.Load() {
		pollFor(recordWait+time.Second, cl.IsTakenOver) // the reconnect may wait that long for the journal
	}
}

// testHookEndSession, set by tests only, runs as endSession starts
// recording an end: a delay there lets a reconnect arrive mid-way.
var testHookEndSession func()

// testHookOnDisconnect, set by tests only, runs when mochi calls
// OnDisconnect: a delay there lets a reconnect overtake it.
var testHookOnDisconnect func(clientID string)

// endSession ends cl's session once: from mochi's OnDisconnect, or earlier
// from endOvertaken or abandoned, whichever comes first.
func (h *hook) endSession(cl *mqtt.Client, err error) {
	v, ok := h.conns.LoadAndDelete(cl)
	if !ok {
		return
	}
	st := v.(*connState)
	defer func() {
		close(st.ended)
		h.current.CompareAndDelete(cl.ID, st)
	}()
	if testHookEndSession != nil {
		testHookEndSession()
	}
	st.mu.Lock()
	if st.timer != nil {
		st.timer.Stop()
	}
	kick, aclTopic := st.kick, st.aclTopic
	st.mu.Unlock()
	st.release()
	if st.session == nil {
		return
	}
	var reason presence.Reason
	var result presence.Result
	var detail string
	switch kick {
	case presence.ReasonTokenExpired:
		reason, result = kick, presence.ResultClosedRemotely
		detail = "SAS token expired at " + st.id.tokenExpiry.UTC().Format(time.RFC3339) + "; the hub closed the connection"
	case presence.ReasonDisabled:
		reason, result, detail = kick, presence.ResultUnauthorized, "the device was disabled in the registry"
	case presence.ReasonDeleted:
		reason, result, detail = kick, presence.ResultUnauthorized, "the device was deleted from the registry"
	case presence.ReasonServerError:
		reason, result, detail = kick, presence.ResultServerError, "the journal did not store the connect, so the hub closed the connection instead of acknowledging it"
	default:
		reason, result, detail = classify(cl.StopCause(), err)
		if reason == presence.ReasonProtocolError && aclTopic != "" {
			detail = "published to topic " + aclTopic + ", which the device may not use"
		}
	}
	h.b.opts.Presence.Disconnect(st.session, reason, result, detail)
}

// OnACLCheck keeps each device to its own topics (IoT Hub is not a general
// broker: reference/iothub-facts.md §5.4).
// OnACLCheck keeps each device to its own topics (IoT Hub is not a general
// broker: reference/iothub-facts.md §5.4). The client id is the device id
// (authenticate enforced it); mochi also asks for deliveries to a session
// whose connection is gone, so the check must not need connection state.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if !write {
		return deviceMaySubscribe(cl.ID, topic)
	}
	if deviceMayPublish(cl.ID, topic) {
		return true
	}
	if st := h.state(cl); st != nil {
		st.mu.Lock()
		st.aclTopic = topic
		st.mu.Unlock()
	}
	return false
}

func deviceMayPublish(dev, topic string) bool {
	base := "devices/" + dev + "/messages/events"
	return topic == base || strings.HasPrefix(topic, base+"/")
}

// deviceMaySubscribe is asked for subscription filters and, by mochi, for
// each message delivered (with its concrete topic).
func deviceMaySubscribe(dev, topic string) bool {
	c2d := "devices/" + dev + "/messages/devicebound/"
	switch {
	case topic == c2d+"#", strings.HasPrefix(topic, c2d) && !strings.ContainsAny(topic, "#+"):
		return true
	case topic == "$iothub/methods/POST/#", topic == "$iothub/twin/res/#", topic == "$iothub/twin/PATCH/properties/desired/#":
		return true
	}
	return false
}

// OnPublish takes a device's telemetry: it is handed to the telemetry sink
// and not routed to other MQTT subscribers (devices cannot read D2C).
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // C2D sent by the hub itself
	}
	dev, mod, props, sys, err := telemetry.ParseEventsTopic(pk.TopicName)
	if err != nil {
		// The ACL admitted the topic, so only the property bag can be bad.
		props = map[string]string{"tether-bad-properties": err.Error()}
	}
	h.b.opts.Telemetry(telemetry.Message{
		DeviceID: dev, ModuleID: mod, EnqueuedTime: h.b.opts.Now().UTC(),
		Payload: bytes.Clone(pk.Payload), Properties: props, SystemProperties: sys,
	})
	h.b.opts.Presence.Touch(dev)
	return pk, packets.CodeSuccessIgnore
}
