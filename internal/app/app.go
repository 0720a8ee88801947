package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/broker"
	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/cluster"
	"github.com/tether-hub/tether/internal/datadir"
	"github.com/tether-hub/tether/internal/insight/feed"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/metrics"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/kvstore"
	"github.com/tether-hub/tether/internal/sas"
	"github.com/tether-hub/tether/internal/telemetry"
	"github.com/tether-hub/tether/internal/throttle"
)

// App is a running hub.
type App struct {
	cfg Config
	log *slog.Logger

	journal   *journal.Journal
	publisher *journal.Publisher
	presence  *presence.Tracker
	registry  *registry.Registry
	broker    *broker.Broker
	logs      *logService
	subs      *subscriptionService
	metrics   *metrics.Collector
	insights  *feed.Feed
	alerts    *alertService
	https     *http.Server
	httpsLn   net.Listener
	debugLn   net.Listener
	caFile    string
	limiter   *throttle.Limiter
	cluster   *cluster.Node // nil when alone (clustering.go)

	// connFan reads TETHER_CONN once for the metrics collector and the
	// insight feed (started once both have joined it).
	connFan *journal.ConnFanout
	// deliveryMu serialises starting and stopping the delivery engine as
	// this node takes and loses the delivery job (clustering.go).
	deliveryMu sync.Mutex
	reloadSub  *nats.Subscription // the delivery leader's (clustering.go)
	// deliveryTerm is the lead's term the running delivery engine
	// delivers under (nil: none runs); leadNode the cluster node for the
	// engine's pause, set once the node has joined (the engine may start
	// before Open returns).
	deliveryTerm context.Context
	leadNode     atomic.Pointer[cluster.Node]
	// bound are the addresses the hub's listeners were bound to
	// (ownListeners).
	bound atomic.Pointer[[]netip.AddrPort]

	compactions atomic.Uint64
	settles     atomic.Uint64

	// Production (datadir.go, adminsock.go, certreload.go, backup.go).
	dirFormat  datadir.Result
	apiHandler http.Handler
	certs      *certReloader

	stopOnce sync.Once
	stopErr  error
	stops    []func(context.Context) error // undo steps, run in reverse
}

// New checks cfg; Start does the work.
func New(cfg Config, log *slog.Logger) (*App, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &App{cfg: cfg, log: log}, nil
}

func (a *App) onStop(f func(context.Context) error) { a.stops = append(a.stops, f) }

// Start builds and starts every part. On error, what was started is
// stopped again.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
			defer cancel()
			_ = a.Stop(sctx)
		}
	}()
	if err := a.openDataDir(); err != nil {
		return err
	}
	tlsConf, err := a.tlsConfig()
	if err != nil {
		return err
	}
	// The limiter times the server key, which reloadCertificates moves
	// behind GetCertificate: first.
	if err := a.buildLimiter(tlsConf); err != nil {
		return err
	}
	if err := a.reloadCertificates(tlsConf); err != nil {
		return err
	}

	jo := journal.Options{DataDir: a.cfg.DataDir, URL: a.cfg.NATSURL, SyncAlways: a.cfg.JournalSyncAlways, Logger: a.log}
	a.clusterJournal(&jo)
	a.journal, err = journal.Open(ctx, jo)
	if err != nil {
		return err
	}
	a.onStop(func(context.Context) error { a.journal.Close(); return nil })

	a.connFan = journal.NewConnFanout(a.journal.JS, journal.FanoutOptions{Logger: a.log})
	epoch, err := a.journal.NextEpoch(ctx, presence.Filetime(time.Now()))
	if err != nil {
		return err
	}
	if err := a.openMetrics(ctx); err != nil {
		return err
	}
	// The log writer stops after the publisher has flushed (stops run in
	// reverse), so a clean shutdown's last events reach the log.
	if err := a.startLogs(ctx); err != nil {
		return err
	}
	a.publisher = journal.NewPublisher(a.journal.JS, 1<<16, a.log)
	a.onStop(a.publisher.Close)

	if err := a.startEvents(ctx); err != nil {
		return err
	}
	if err := a.startInsights(ctx); err != nil {
		return err
	}
	a.presence = presence.NewTracker(presence.Options{Hub: a.cfg.HubName, Epoch: epoch, Sink: a.journalConnEvent})

	if a.cfg.Cluster.On() {
		// A cluster records the sessions a dead node left open by their
		// owner records, not from the journal: other nodes' devices in it
		// are live.
		if err := a.startCluster(ctx, epoch); err != nil {
			return err
		}
	} else if err := a.recordOrphans(ctx); err != nil {
		return err
	}

	a.registry, err = registry.New(ctx, kvstore.New(a.journal.Devices, a.journal.Policies, a.journal.Twins, a.journal.CAs), registry.Options{
		HubName:      a.cfg.HubName,
		OnChange:     a.onRegistryChange,
		OnTwinChange: a.onTwinChange,
		LiveState:    a.presence.State,
		// OnPolicyChange: policies.go.
		OnPolicyChange: a.onPolicyChange,
	})
	if err != nil {
		return err
	}
	if err := a.watchPolicies(ctx); err != nil {
		return err
	}
	if a.cfg.Cluster.On() {
		if err := a.watchRegistry(); err != nil {
			return err
		}
	}
	if err := a.startMetrics(ctx); err != nil {
		return err
	}
	a.seedQuota(ctx)

	a.broker, err = broker.New(broker.Options{
		HubName: a.cfg.HubName, TLSAddr: a.cfg.MQTTAddr, TLS: tlsConf, TCPAddr: a.cfg.TCPAddr, WebSocket: true,
		Devices: a.lookupDevice, Policies: a.lookupPolicy, Authorities: a.registry.Authorities, Presence: a.presence,
		Telemetry: a.journalTelemetry, Twins: deviceTwins{a}, ConnectTimeout: a.cfg.ConnectTimeout, Logger: a.log,
		Throttle: a.limiter, Claims: a.claims(),
	})
	if err != nil {
		return err
	}
	if err := a.registerBrokerMetrics(); err != nil {
		return err
	}

	if err := a.broker.Start(); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	a.onStop(a.broker.Stop)
	a.noteListeners(a.broker.TLSAddr(), a.broker.TCPAddr())

	if err := a.startAlerts(ctx); err != nil {
		return err
	}
	if err := a.startHTTPS(tlsConf); err != nil {
		return err
	}
	a.startCompactor()
	if err := a.startDebug(); err != nil {
		return err
	}
	a.noteListeners(a.HTTPSAddr())
	if a.debugLn != nil {
		a.noteListeners(a.debugLn.Addr().String())
	}
	if err := a.startCertificateWatch(); err != nil {
		return err
	}
	if err := a.startAdminSocket(); err != nil {
		return err
	}
	if a.cfg.Dev {
		if err := a.writeDevFiles(); err != nil {
			return err
		}
	} else if err := a.writeBootstrap(); err != nil {
		return err
	}
	a.log.Info("tether hub started", "hub", a.cfg.HubName, "mqtt", a.MQTTAddr(), "https", a.HTTPSAddr(), "tcp", a.TCPAddr(), "data", a.cfg.DataDir, "embedded_nats", a.journal.Embedded())
	return nil
}

// Stop undoes Start in reverse order: devices are disconnected (recorded
// as server-shutdown), queued events reach the journal, the log writer
// catches up, then the journal closes. Idempotent; bounded by ctx.
func (a *App) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() {
		var errs []error
		for i := len(a.stops) - 1; i >= 0; i-- {
			if err := a.stops[i](ctx); err != nil {
				errs = append(errs, err)
			}
		}
		a.stopErr = errors.Join(errs...)
	})
	return a.stopErr
}

func (a *App) tlsConfig() (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	if a.cfg.TLSCertFile != "" {
		cert, err = tls.LoadX509KeyPair(a.cfg.TLSCertFile, a.cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
	} else {
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if a.cfg.HubName != "localhost" {
			hosts = append([]string{a.cfg.HubName}, hosts...)
		}
		cert, err = certs.EnsureDev(a.cfg.DataDir, hosts)
		if err != nil {
			return nil, fmt.Errorf("dev certificate: %w", err)
		}
		a.caFile = filepath.Join(a.cfg.DataDir, certs.CAFile)
		if abs, err := filepath.Abs(a.caFile); err == nil {
			a.caFile = abs
		}
	}
	// Client certificates are requested, never required, and verified by
	// the broker (X.509 devices; internal/x509auth), so SAS devices and
	// API callers without one are unaffected.
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}, nil
}

// journalConnEvent is presence's sink: one ordered queue into the journal.
func (a *App) journalConnEvent(ev presence.ConnectionEvent) {
	err := a.publisher.Publish(journal.ConnectionEventMsg(ev))
	if err != nil {
		a.log.Error("connection event lost: journal closed", "device", ev.DeviceID, "kind", ev.Kind, "err", err)
		if ev.Recorded != nil {
			ev.Recorded(err)
		}
	}
}

// journalTelemetry is the broker's telemetry sink: stored, when set, is
// called once the journal stored the message, and only then does the
// device get its PUBACK.
func (a *App) journalTelemetry(m telemetry.Message, stored func(error)) {
	msg := journal.TelemetryMsg(m)
	msg.Done = stored
	if err := a.publisher.Publish(msg); err != nil {
		a.log.Warn("telemetry dropped: journal closed", "device", m.DeviceID)
		if stored != nil {
			stored(err)
		}
	}
}

// onRegistryChange journals the change and disconnects a device that was
// disabled or deleted while connected.
func (a *App) onRegistryChange(c registry.Change) {
	err := a.publisher.Publish(journal.Msg{
		Subject: journal.RegistrySubject(c.DeviceID, string(c.Op)),
		ID:      c.ID,
		Encode:  func() ([]byte, error) { return json.Marshal(c) },
	})
	if err != nil {
		a.log.Error("registry change not journalled", "device", c.DeviceID, "op", c.Op, "err", err)
	}
	if a.broker == nil {
		return
	}
	switch {
	case c.Op == registry.OpDeleted:
		a.broker.Kick(c.DeviceID, presence.ReasonDeleted)
	case c.Op == registry.OpUpdated && c.Device.Status == registry.Disabled:
		a.broker.Kick(c.DeviceID, presence.ReasonDisabled)
	}
}

func (a *App) lookupDevice(id string) (broker.Credentials, bool) {
	d, ok := a.registry.Device(id)
	if !ok {
		return broker.Credentials{}, false
	}
	au := d.Authentication
	c := broker.Credentials{Type: au.Type, Enabled: d.Status == registry.Enabled,
		Keys: [2]string{au.SymmetricKey.PrimaryKey, au.SymmetricKey.SecondaryKey}}
	if p := au.X509Thumbprint.PrimaryThumbprint; p != nil {
		c.Thumbprints[0] = *p
	}
	if p := au.X509Thumbprint.SecondaryThumbprint; p != nil {
		c.Thumbprints[1] = *p
	}
	return c, true
}

func (a *App) lookupPolicy(name string) (keys [2]string, deviceConnect, found bool) {
	p, ok := a.registry.Policy(name)
	if !ok {
		return keys, false, false
	}
	return [2]string{p.PrimaryKey, p.SecondaryKey}, p.Rights&registry.DeviceConnect != 0, true
}

// OwnerConnectionString is the iothubowner policy's connection string.
func (a *App) OwnerConnectionString() string {
	p, _ := a.registry.Policy("iothubowner")
	return sas.ConnectionString{HostName: a.cfg.HubName, SharedAccessKeyName: p.Name, SharedAccessKey: p.PrimaryKey}.String()
}

// Accessors, mainly for tests and the serve banner.
func (a *App) MQTTAddr() string  { return a.broker.TLSAddr() }
func (a *App) TCPAddr() string   { return a.broker.TCPAddr() }
func (a *App) HTTPSAddr() string { return a.httpsLn.Addr().String() }
func (a *App) CAFile() string    { return a.caFile }

// DebugAddr is the bound pprof address ("" when off).
func (a *App) DebugAddr() string {
	if a.debugLn == nil {
		return ""
	}
	return a.debugLn.Addr().String()
}

func (a *App) HubName() string               { return a.cfg.HubName }
func (a *App) Registry() *registry.Registry  { return a.registry }
func (a *App) Broker() *broker.Broker        { return a.broker }
func (a *App) Presence() *presence.Tracker   { return a.presence }
func (a *App) Journal() *journal.Journal     { return a.journal }
func (a *App) Publisher() *journal.Publisher { return a.publisher }
func (a *App) DataDir() string               { return a.cfg.DataDir }
