package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/broker"
	"github.com/tether-hub/tether/internal/dashboard"
	"github.com/tether-hub/tether/internal/events"
)

// startHTTPS serves the API, the dashboard and MQTT over WebSockets on one
// TLS port, as IoT Hub does on 443.
func (a *App) startHTTPS(tlsConf *tls.Config) error {
	apiServer := api.New(api.Deps{
		Registry:           a.registry,
		HubName:            a.cfg.HubName,
		Logger:             a.log,
		Logs:               a.logs,
		Query:              a.queryRunner(),
		C2D:                c2dAdapter{a: a, sent: a.metrics.C2DSent},
		Telemetry:          &telemetryFeed{nc: a.journal.NC},
		Events:             &eventTail{nc: a.journal.NC},
		Subscriptions:      a.subs,
		SubscriptionPolicy: a.subs.policy,
		Alerts:             a.alerts,
		Metrics:            a.metrics.Store(),
		Methods:            methodAdapter{a},
		Operations:         a,
		DiagnosticSettings: a.logs.diag,
		Backup:             backupService{a},
		Insights:           insightSource{a.insights},
		Cluster:            a.clusterSource(),
	})
	a.apiHandler = apiServer // also served on the local admin socket (adminsock.go)
	mux := http.NewServeMux()
	mux.Handle(broker.WebSocketPath, a.broker.WebSocketHandler())
	mux.Handle("/metrics", a.metrics.Handler())
	// The dashboard at "/" hands every path that is not its own to the
	// API, signed-in sessions marked with their policy.
	mux.Handle("/", dashboard.New(dashboard.Options{
		Registry: a.registry, HubName: a.cfg.HubName, API: apiServer, Logger: a.log,
	}))
	ln, err := net.Listen("tcp", a.cfg.HTTPSAddr)
	if err != nil {
		return fmt.Errorf("https: %w", err)
	}
	a.httpsLn = ln
	a.subs.hs.ValidationURL = events.ValidationURLFunc("https://" + a.apiHostPort())
	// Long-lived responses (the SSE telemetry stream) see their request
	// context end when shutdown starts, instead of holding Shutdown until
	// its deadline.
	base, cancelBase := context.WithCancel(context.Background())
	conf := tlsConf.Clone()
	conf.NextProtos = []string{"h2", "http/1.1"}
	a.https = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
		TLSConfig:         conf,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	a.https.RegisterOnShutdown(cancelBase)
	go func() {
		// WakeListener: the broker can end an MQTT-WS session without
		// losing what the device had already sent (broker/wakeconn.go).
		err := a.https.Serve(tls.NewListener(broker.WakeListener(ln), conf))
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("https server stopped", "err", err)
		}
	}()
	a.onStop(func(ctx context.Context) error {
		// Shutdown does not wait for hijacked (WebSocket) connections; the
		// broker's Stop, which runs before this, has ended those sessions.
		return a.https.Shutdown(ctx)
	})
	return nil
}

func splitHostPort(addr string) (string, string, error) { return net.SplitHostPort(addr) }
