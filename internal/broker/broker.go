package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/telemetry"
	"github.com/tether-hub/tether/internal/throttle"
)

// Protocol labels in events and logs.
const (
	protoMQTT   = "MQTT"
	protoMQTTWS = "MQTT-WS"
)

// Options configure a Broker.
type Options struct {
	// HubName is the host name devices put in usernames and tokens.
	HubName string
	// TLSAddr serves MQTT over TLS (IoT Hub's 8883); needs TLS.
	TLSAddr string
	TLS     *tls.Config
	// TCPAddr serves plain MQTT; empty disables it (the default).
	TCPAddr string
	// WebSocket enables MQTT over WebSockets via WebSocketHandler.
	WebSocket bool

	Devices  DeviceLookup
	Policies PolicyLookup
	// Authorities are the CAs for certificateAuthority devices; nil: none.
	Authorities AuthorityLookup
	Presence    *presence.Tracker
	// Telemetry receives each D2C message. For a QoS 1 message stored is
	// set: the sink calls it once the message is durable (nil) or never
	// will be (an error), and the device gets its PUBACK only then. The
	// sink must not block for long; stored must not block.
	Telemetry func(m telemetry.Message, stored func(error))
	// Throttle limits new connections, TLS handshakes in progress, device
	// connects and D2C messages (throttle.go); nil limits nothing.
	Throttle *throttle.Limiter
	// Claims, when set, makes a device's one live session cluster-wide
	// (claims.go); nil: this hub is alone.
	Claims Claims
	// Twins serves twin GETs and reported patches; nil answers them 503.
	// Its methods run on the device's reader and must not keep the patch.
	Twins Twins

	// ConnectTimeout bounds TLS handshake + CONNECT (default 10 s).
	ConnectTimeout time.Duration
	// MaxMessageSize bounds a D2C payload (IoT Hub: 256 KiB).
	MaxMessageSize int
	// SessionExpiry is how long a clean-session-0 session's subscriptions
	// outlive its connection (default 7 days).
	SessionExpiry time.Duration

	Logger *slog.Logger
	Now    func() time.Time
}

// Broker is Tether's MQTT endpoint: the listeners and the session table.
type Broker struct {
	opts  Options
	log   *slog.Logger
	table *table
	ws    *wsHandler
	// writers write established sessions' outbound packets.
	writers *writerPool
	methods *methodCalls
	// expiries end sessions whose tokens expire.
	expiries expiries
	// throttled are the refusals of Options.Throttle's limits (throttle.go);
	// refusals collects those made before a TLS handshake (refusalbatch.go).
	throttled *throttleRefusals
	refusals  *refusalBatch

	tlsLn, tcpLn net.Listener
	// connectors run accepted connections' connect phases (connectors.go).
	connectors *connectors
	// poller holds idle sessions (idlepark.go), made at the first park.
	pollerOnce sync.Once
	poller     *idlePoller

	// wg counts connections from accept to their recorded end.
	wg sync.WaitGroup
	// connecting holds connections not yet in the session table, for Stop.
	connMu     sync.Mutex
	connecting map[*session]struct{}

	// slowRecords counts connects acknowledged before the journal stored
	// their connected event (recordWait passed).
	slowRecords atomic.Uint64
	started     atomic.Bool // Start ran (the refusal flusher runs)
	stopOnce    sync.Once
	stopped     chan struct{} // closed by Stop
}

// SlowRecords is how many connects were acknowledged before their
// connected event was stored, because the journal took longer than 5 s.
func (b *Broker) SlowRecords() uint64 { return b.slowRecords.Load() }

// New checks o; Start opens the listeners.
func New(o Options) (*Broker, error) {
	if o.HubName == "" {
		return nil, errors.New("broker: hub name is required")
	}
	if o.Devices == nil || o.Policies == nil || o.Presence == nil {
		return nil, errors.New("broker: Devices, Policies and Presence are required")
	}
	if o.TLSAddr != "" && o.TLS == nil {
		return nil, errors.New("broker: a TLS address needs a TLS config")
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = 256 << 10
	}
	if o.SessionExpiry == 0 {
		o.SessionExpiry = 7 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Telemetry == nil {
		o.Telemetry = func(_ telemetry.Message, stored func(error)) {
			if stored != nil {
				stored(nil)
			}
		}
	}
	b := &Broker{opts: o, log: o.Logger, table: newTable(), connecting: map[*session]struct{}{}, writers: newWriterPool(), methods: newMethodCalls(), stopped: make(chan struct{})}
	b.expiries.b = b
	b.connectors = newConnectors(b.stopped)
	if o.WebSocket {
		b.ws = newWSHandler(b)
	}
	if o.Throttle != nil {
		b.throttled = newThrottleRefusals(o.Throttle.Limits())
		b.refusals = &refusalBatch{pending: map[refusalKey]*presence.ConnectionEvent{}, arrived: make(chan struct{}, 1), done: make(chan struct{})}
	}
	return b, nil
}

// maxPacket is the largest packet a device may send: IoT Hub's message
// limit plus room for topic and properties.
func (b *Broker) maxPacket() int { return b.opts.MaxMessageSize + 64<<10 }

// sweepPeriod is how often expired C2D messages and persistent sessions
// are dropped from the session table.
const sweepPeriod = time.Minute

// mqttListen opens the MQTT listeners without TCP keep-alive, which Go
// turns on for every accepted connection by default (a probe after 15 s
// of silence, then every 15 s): MQTT's own keep-alive (1.5 ×, as IoT Hub)
// ends a silent device's session, so the probes only cost, and an idle
// hub's kernel sent and answered one per idle connection every 15 s (667
// a second with 10,000 devices; Mosquitto sets none), and each accepted
// connection took four setsockopt calls for them.
var mqttListen = net.ListenConfig{KeepAlive: -1}

// Start opens the listeners and serves them.
func (b *Broker) Start() error {
	go b.sweeper()
	if b.refusals != nil {
		b.started.Store(true)
		go b.refusalFlusher()
	}
	if b.opts.TLSAddr != "" {
		ln, err := mqttListen.Listen(context.Background(), "tcp", b.opts.TLSAddr)
		if err != nil {
			return fmt.Errorf("broker: MQTT/TLS on %s: %w", b.opts.TLSAddr, err)
		}
		b.tlsLn = ln
		go b.accept(ln, b.opts.TLS.Clone())
	}
	if b.opts.TCPAddr != "" {
		ln, err := mqttListen.Listen(context.Background(), "tcp", b.opts.TCPAddr)
		if err != nil {
			if b.tlsLn != nil {
				_ = b.tlsLn.Close()
			}
			return fmt.Errorf("broker: MQTT/TCP on %s: %w", b.opts.TCPAddr, err)
		}
		b.tcpLn = ln
		go b.accept(ln, nil)
	}
	return nil
}

// TLSAddr is the bound MQTT/TLS address ("" when off).
func (b *Broker) TLSAddr() string { return addrOf(b.tlsLn) }

// TCPAddr is the bound plain MQTT address ("" when off).
func (b *Broker) TCPAddr() string { return addrOf(b.tcpLn) }

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// WebSocketHandler serves MQTT over WebSockets; mount it at WebSocketPath.
// Nil when WebSockets are off.
func (b *Broker) WebSocketHandler() http.Handler {
	if b.ws == nil {
		return nil
	}
	return b.ws
}

// sweeper runs table.sweep every sweepPeriod until Stop.
func (b *Broker) sweeper() {
	t := time.NewTicker(sweepPeriod)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.table.sweep(b.opts.Now())
			b.opts.Throttle.Sweep(time.Now())
		case <-b.stopped:
			return
		}
	}
}

// Stop closes the listeners and ends every session (recorded as
// server-shutdown), waiting for the ends to be recorded or ctx.
func (b *Broker) Stop(ctx context.Context) error {
	var err error
	b.stopOnce.Do(func() {
		b.connMu.Lock()
		b.table.stopping.Store(true) // under connMu: no track (wg.Add) after this
		b.connMu.Unlock()
		close(b.stopped)
		for _, ln := range []net.Listener{b.tlsLn, b.tcpLn} {
			if ln != nil {
				_ = ln.Close()
			}
		}
		b.connMu.Lock()
		for s := range b.connecting {
			_ = s.closeRaw()
		}
		b.connMu.Unlock()
		for _, s := range b.table.all() {
			s.requestEnd(causeShutdown)
		}
		done := make(chan struct{})
		go func() { b.wg.Wait(); close(done) }()
		select {
		case <-done:
			b.writers.stop()
			b.pollerOnce.Do(func() {}) // none made from here
			if b.poller != nil {       // no session is left to park
				b.poller.stop()
			}
		case <-ctx.Done():
			err = fmt.Errorf("broker: stop: %w", ctx.Err())
		}
		if b.started.Load() {
			select {
			case <-b.refusals.done: // the last refusals are journalled
			case <-ctx.Done():
				err = fmt.Errorf("broker: stop: %w", ctx.Err())
			}
		}
	})
	return err
}

// Kick ends a device's live session for reason (disabled, deleted). It
// reports whether a session was live.
func (b *Broker) Kick(deviceID string, reason presence.Reason) bool {
	if reason == presence.ReasonDeleted {
		b.table.drop(deviceID)
	}
	s := b.table.live(deviceID)
	if s == nil {
		return false
	}
	c := causeDisabled
	if reason == presence.ReasonDeleted {
		c = causeDeleted
	}
	s.requestEnd(c)
	return true
}

// track counts a new connection and registers it as connecting; false
// once stopping (then it is not counted).
func (b *Broker) track(s *session) bool {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if b.table.stopping.Load() {
		return false
	}
	b.wg.Add(1)
	b.connecting[s] = struct{}{}
	return true
}

func (b *Broker) untrack(s *session) {
	b.connMu.Lock()
	delete(b.connecting, s)
	b.connMu.Unlock()
}

// preConnectFailure records a connection that failed before a CONNECT
// could be admitted: garbage, oversized or malformed first packets, TLS
// failures, and connect timeouts. A hub that is stopping records none.
func (b *Broker) preConnectFailure(s *session, err error) {
	if b.table.stopping.Load() {
		return
	}
	ev := presence.ConnectionEvent{
		Protocol: s.proto(), MaskedIP: maskIP(s.remote),
		Reason: presence.ReasonProtocolError, Result: presence.ResultBadRequest,
		Detail: "connection failed before a valid CONNECT: " + err.Error(),
	}
	if isTimeout(err) {
		ev.Reason, ev.Result = presence.ReasonConnectTimeout, presence.ResultTimeout
		ev.Detail = fmt.Sprintf("no complete TLS handshake and CONNECT within %s", b.opts.ConnectTimeout)
	}
	b.opts.Presence.Refuse(ev)
}

// idlePoller is the broker's idle poller, made on first use; nil where
// there is none.
func (b *Broker) idlePoller() *idlePoller {
	b.pollerOnce.Do(func() { b.poller = newIdlePoller() })
	return b.poller
}
