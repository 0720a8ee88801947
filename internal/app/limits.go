package app

import (
	"context"
	"crypto"
	"crypto/tls"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/tether-hub/tether/internal/metrics"
	"github.com/tether-hub/tether/internal/throttle"
)

// buildLimiter sizes the throttles (Config.limits) with the server's key
// and logs what is in force.
func (a *App) buildLimiter(tlsConf *tls.Config) error {
	var key crypto.Signer
	if len(tlsConf.Certificates) > 0 {
		key, _ = tlsConf.Certificates[0].PrivateKey.(crypto.Signer)
	}
	l, sized := a.cfg.limits(key)
	lim, err := throttle.New(l, time.Now())
	if err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	a.limiter = lim
	l = lim.Limits()
	if a.cfg.NoThrottle {
		a.log.Warn("throttling is off (--no-throttle): a reconnect storm can saturate the hub")
		return nil
	}
	rateSource := "configured"
	if sized != nil {
		rateSource = fmt.Sprintf("sized to this machine: %s a TLS connect, %s a plain-TCP one, half of %d cores",
			sized.TLSCost.Round(time.Microsecond), sized.PlainCost.Round(time.Microsecond), runtime.GOMAXPROCS(0))
	}
	a.log.Info("throttling", "connect_rate", fmt.Sprintf("%.0f/s", l.ConnectRate), "plain_connect_rate", plainRate(l),
		"rate", rateSource, "connect_burst", l.ConnectBurst, "connect_queue", l.ConnectQueue, "handshakes", l.Handshakes, "per_address", l.AddressRate,
		"per_device", fmt.Sprintf("%g/s burst %d", l.DeviceRate, l.DeviceBurst),
		"device_messages", l.MessageRate, "hub_messages", l.HubMessageRate, "daily_quota", l.DailyQuota)
	return nil
}

// plainRate says what the hub-wide rate allows plain-TCP connections.
func plainRate(l throttle.Limits) string {
	switch {
	case math.IsInf(l.PlainConnectRate, 1) || l.ConnectRate == 0 && l.PlainConnectRate == 0:
		return "off"
	case l.PlainConnectRate == 0:
		return "as connect_rate"
	}
	return fmt.Sprintf("%.0f/s", l.PlainConnectRate)
}

// Limits are the throttles in force (zero fields: off).
func (a *App) Limits() throttle.Limits { return a.limiter.Limits() }

// seedQuota starts today's message count from the metrics history, so a
// restart does not hand out the daily quota again. The history may still
// be catching up with the journal: what it holds at start is counted.
func (a *App) seedQuota(ctx context.Context) {
	if a.limiter.Limits().DailyQuota == 0 {
		return
	}
	now := time.Now().UTC()
	midnight := now.Truncate(24 * time.Hour)
	vals, err := a.metrics.Store().Window(ctx, metrics.WindowQuery{
		Metric: metrics.TelemetryIngress, Aggregation: metrics.AggTotal, From: midnight, To: now.Add(time.Second),
	})
	if err != nil || len(vals) == 0 {
		if err != nil {
			a.log.Warn("daily quota: today's count could not be read from the metrics history; starting from 0", "err", err)
		}
		return
	}
	a.limiter.SeedQuota(now, int64(vals[0].Value))
}

// throttleGauges are the limiter's gauges, sampled with the others.
func (a *App) throttleGauges(now time.Time) []metrics.GaugeSample {
	inProgress, waiting := a.limiter.Handshakes()
	return []metrics.GaugeSample{
		{Metric: metrics.HandshakesInProgress, Value: float64(inProgress)},
		{Metric: metrics.HandshakesWaiting, Value: float64(waiting)},
		{Metric: metrics.DailyQuotaUsed, Value: float64(a.limiter.QuotaUsed(now))},
	}
}
