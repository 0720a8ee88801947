package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/metrics"
)

// MetricsFile is the metrics history inside the data dir.
const MetricsFile = "metrics.db"

// openMetrics opens the history and builds the collector; startMetrics
// starts it once the registry and the delivery engine it samples exist.
func (a *App) openMetrics(ctx context.Context) error {
	store, err := metrics.OpenStore(ctx, metrics.StoreOptions{
		Path:   filepath.Join(a.cfg.DataDir, MetricsFile),
		Recent: a.cfg.MetricsRecent, Retention: a.cfg.MetricsRetention, Logger: a.log,
	})
	if err != nil {
		return fmt.Errorf("metrics history: %w", err)
	}
	a.onStop(store.Close)
	a.metrics, err = metrics.NewCollector(metrics.CollectorOptions{
		JS: a.journal.JS, Store: store, Logger: a.log,
		Devices:    func() (int, int) { return a.registry.Counts() },
		Deliveries: a.deliveryCounts,
		Gauges:     a.throttleGauges,
		Flapping:   a.flappingDevices,
		Conn:       a.connFan,
	})
	return err
}

func (a *App) startMetrics(ctx context.Context) error {
	if err := a.metrics.Start(ctx); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	a.onStop(a.metrics.Stop)
	// The insight feed and the collector have joined the fanout; it stops
	// before either (stops run in reverse).
	a.connFan.Start()
	a.onStop(a.connFan.Stop)
	return nil
}

// registerBrokerMetrics exposes what only the broker knows.
func (a *App) registerBrokerMetrics() error {
	if a.cluster != nil {
		if err := a.metrics.Register(a.cluster.Collector()); err != nil {
			return err
		}
	}
	return a.metrics.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tether_connects_acknowledged_unstored_total",
		Help: "Connects acknowledged (CONNACK) before the journal stored their connected event, because it took longer than 5 s: the journal is overloaded and a crash now could lose those connects.",
	}, func() float64 { return float64(a.broker.SlowRecords()) }))
}

// deliveryCounts reads the delivery engine's counters for the sampler.
func (a *App) deliveryCounts() []metrics.DeliveryCounts {
	stats := a.subs.engine().Stats()
	out := make([]metrics.DeliveryCounts, len(stats))
	for i, s := range stats {
		out[i] = metrics.DeliveryCounts{
			Subscription: s.Subscription, Delivered: s.Delivered, Failed: s.FailedAttempts,
			DeadLettered: s.DeadLettered, Dropped: s.Dropped, Lag: s.Lag,
		}
	}
	return out
}

// observeDelivery is the delivery engine's ObserveLatency.
func (a *App) observeDelivery(sub string, t events.EventType, d time.Duration) {
	a.metrics.ObserveDelivery(sub, string(t), d)
}

// Metrics is the metrics history (Store.Window answers alert rules).
func (a *App) Metrics() *metrics.Store { return a.metrics.Store() }

// MetricsCollector is the journal consumer that fills it.
func (a *App) MetricsCollector() *metrics.Collector { return a.metrics }
