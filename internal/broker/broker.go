package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/telemetry"
)

// Protocol labels in events and logs.
const (
	protoMQTT   = "MQTT"
	protoMQTTWS = "MQTT-WS"
)

// Listener ids inside mochi.
const (
	listenerTLS = "tls"
	listenerTCP = "tcp"
	listenerWS  = "ws"
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
	Presence *presence.Tracker
	// Telemetry receives each D2C message; it must not block for long.
	Telemetry func(telemetry.Message)

	// ConnectTimeout bounds TLS handshake + CONNECT (default 10 s).
	ConnectTimeout time.Duration
	// MaxMessageSize bounds a D2C payload (IoT Hub: 256 KiB).
	MaxMessageSize int
	// SessionExpiry is how long a clean-session-0 session (subscriptions,
	// queued C2D) outlives its connection (default 7 days).
	SessionExpiry time.Duration

	Logger *slog.Logger
	Now    func() time.Time
}

// Broker is the MQTT endpoint.
type Broker struct {
	opts  Options
	srv   *mqtt.Server
	hook  *hook
	locks *deviceLocks
	ws    *wsListener
	tlsL  *netListener
	tcpL  *netListener
	log   *slog.Logger

	// slowRecords counts connects acknowledged before the journal stored
	// their connected event (recordWait passed).
	slowRecords atomic.Uint64

	stopOnce sync.Once
}

// SlowRecords is how many connects were acknowledged before their
// connected event was stored, because the journal took longer than 5 s.
func (b *Broker) SlowRecords() uint64 { return b.slowRecords.Load() }

// New builds a broker; Start opens its listeners.
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
		o.Telemetry = func(telemetry.Message) {}
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = 64 // default 8192 slots cost 64 KiB per client
	caps.MaximumQos = 1                  // IoT Hub: QoS 0 and 1
	caps.RetainAvailable = 0             // IoT Hub does not store retained messages
	caps.MaximumPacketSize = uint32(o.MaxMessageSize + 64<<10)
	caps.MaximumSessionExpiryInterval = uint32(o.SessionExpiry / time.Second)
	caps.MaximumInflight = 1024
	// mochi logs every refused packet at Warn; our own log records are the
	// account of what happened, so keep mochi quiet unless debugging.
	mlog := o.Logger.With("component", "mochi")
	if !o.Logger.Enabled(context.Background(), slog.LevelDebug) {
		mlog = slog.New(discardHandler{})
	}
	srv := mqtt.New(&mqtt.Options{
		Capabilities: caps, InlineClient: true, Logger: mlog,
		// Device packets are small; larger reads bypass the buffer anyway.
		ClientNetReadBufferSize: 512,
	})
	b := &Broker{opts: o, srv: srv, locks: newDeviceLocks(), log: o.Logger}
	b.hook = &hook{b: b}
	if err := srv.AddHook(b.hook, nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if o.TLSAddr != "" {
		tc := o.TLS.Clone()
		b.tlsL = &netListener{id: listenerTLS, address: o.TLSAddr, protocol: protoMQTT, tls: tc, connectTimeout: o.ConnectTimeout, onFailure: b.preConnectFailure, closeClients: b.closeListenerClients}
		if err := srv.AddListener(b.tlsL); err != nil {
			return nil, fmt.Errorf("broker: MQTT/TLS on %s: %w", o.TLSAddr, err)
		}
	}
	if o.TCPAddr != "" {
		b.tcpL = &netListener{id: listenerTCP, address: o.TCPAddr, protocol: protoMQTT, connectTimeout: o.ConnectTimeout, onFailure: b.preConnectFailure, closeClients: b.closeListenerClients}
		if err := srv.AddListener(b.tcpL); err != nil {
			return nil, fmt.Errorf("broker: MQTT/TCP on %s: %w", o.TCPAddr, err)
		}
	}
	if o.WebSocket {
		b.ws = newWSListener(listenerWS, o.ConnectTimeout, b.preConnectFailure)
		b.ws.closeClients = b.closeListenerClients
		if err := srv.AddListener(b.ws); err != nil {
			return nil, fmt.Errorf("broker: websocket: %w", err)
		}
	}
	return b, nil
}

// Start serves the listeners.
func (b *Broker) Start() error { return b.srv.Serve() }

// TLSAddr is the bound MQTT/TLS address ("" when off).
func (b *Broker) TLSAddr() string {
	if b.tlsL == nil {
		return ""
	}
	return b.tlsL.Address()
}

// TCPAddr is the bound plain MQTT address ("" when off).
func (b *Broker) TCPAddr() string {
	if b.tcpL == nil {
		return ""
	}
	return b.tcpL.Address()
}

// WebSocketHandler serves MQTT over WebSockets; mount it at WebSocketPath.
// Nil when WebSockets are off.
func (b *Broker) WebSocketHandler() http.Handler {
	if b.ws == nil {
		return nil
	}
	return b.ws
}

// Stop disconnects every device (recorded as server-shutdown) and closes
// the listeners. It waits for the sessions to end or ctx.
func (b *Broker) Stop(ctx context.Context) error {
	var err error
	b.stopOnce.Do(func() {
		done := make(chan struct{})
		go func() { _ = b.srv.Close(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("broker: stop: %w", ctx.Err())
		}
	})
	return err
}

// Kick disconnects a device's live session for reason (disabled, deleted).
// It reports whether a session was live.
func (b *Broker) Kick(deviceID string, reason presence.Reason) bool {
	cl, ok := b.srv.Clients.Get(deviceID)
	if !ok || cl.Closed() {
		return false
	}
	st := b.hook.state(cl)
	if st == nil {
		return false
	}
	st.setKick(reason)
	_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
	return true
}

// preConnectFailure records connections that failed before their CONNECT
// reached the hook: garbage, oversized or malformed first packets, TLS
// failures, and connect timeouts.
func (b *Broker) preConnectFailure(protocol, remote string, err error) {
	ev := presence.ConnectionEvent{
		Protocol: protocol, MaskedIP: maskIP(remote),
		Reason: presence.ReasonProtocolError, Result: presence.ResultBadRequest,
		Detail: "connection failed before a valid CONNECT: " + err.Error(),
	}
	if isTimeout(err) {
		ev.Reason, ev.Result = presence.ReasonConnectTimeout, presence.ResultTimeout
		ev.Detail = fmt.Sprintf("no complete TLS handshake and CONNECT within %s", b.opts.ConnectTimeout)
	}
	b.opts.Presence.Refuse(ev)
}

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// closeListenerClients disconnects a closing listener's clients, in place
// of mochi's own: its Clients.GetByListener takes the map's read lock
// twice (it calls Len inside), so a client deleting itself from the map
// in between (a writer waiting) deadlocks the shutdown. GetAll locks once.
func (b *Broker) closeListenerClients(listener string) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener == listener && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}
