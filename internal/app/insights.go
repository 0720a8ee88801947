package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/insight/feed"
)

// InsightFile holds the insight engine's saved state inside the data dir
// (deleting it rebuilds the engine from the journal).
const InsightFile = "insight.state"

// startInsights starts the insight engine's journal feed: diagnoses, flap
// scores and mass-disconnect incidents (issue 13). It runs after the
// publisher exists (it journals incidents and flap changes) and stops
// before it, saving its state.
func (a *App) startInsights(ctx context.Context) error {
	f, err := feed.New(feed.Options{
		JS:      a.journal.JS,
		Insight: insight.Options{Hub: a.cfg.HubName},
		Publish: a.publisher.Publish,
		Path:    filepath.Join(a.cfg.DataDir, InsightFile),
		Conn:    a.connFan,
		Logger:  a.log,
	})
	if err != nil {
		return err
	}
	if err := f.Start(ctx); err != nil {
		return fmt.Errorf("insights: %w", err)
	}
	a.insights = f
	a.onStop(f.Stop)
	return nil
}

// Insights is the insight engine's feed (for tests and embedding); nil
// before Start.
func (a *App) Insights() *feed.Feed { return a.insights }

// flappingDevices is the metrics collector's flappingDevices sample.
func (a *App) flappingDevices() int {
	if a.insights == nil {
		return 0
	}
	return a.insights.Engine().FlappingDevices()
}

// insightSource serves the API from the engine, its time moved to the
// clock first (feed.Fresh: an idle feed does not tick each second).
type insightSource struct{ f *feed.Feed }

func (s insightSource) Diagnose(id string, since, until time.Time) (insight.Diagnosis, error) {
	return s.f.Fresh().Diagnose(id, since, until)
}
func (s insightSource) Flapping(top int) []insight.FlapScore { return s.f.Fresh().Flapping(top) }
func (s insightSource) Incidents(limit int) []insight.Incident {
	return s.f.Fresh().Incidents(limit)
}
func (s insightSource) Pending() int64 { return s.f.Status().Pending }
