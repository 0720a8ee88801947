package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A subscription's lag is sampled into the history (EventSubscriptionLag)
// and shown on /metrics; a subscription that is gone loses its series.
func TestSubscriptionLag(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, filepath.Join(dir, "j"))
	s, err := OpenStore(context.Background(), StoreOptions{Path: filepath.Join(dir, "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	var mu sync.Mutex
	deliv := []DeliveryCounts{{Subscription: "slow", Lag: 42 * time.Second}, {Subscription: "fast"}}
	c, err := NewCollector(CollectorOptions{JS: j.JS, Store: s, Deliveries: func() []DeliveryCounts {
		mu.Lock()
		defer mu.Unlock()
		return deliv
	}})
	if err != nil {
		t.Fatal(err)
	}
	scrape := func() string {
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	now := time.Now().Truncate(time.Second)
	c.Sample(now)
	vals, err := s.Window(context.Background(), WindowQuery{Metric: SubscriptionLag, Aggregation: AggMaximum,
		SplitBy: []string{DimSubscription}, From: now.Add(-time.Minute), To: now.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, v := range vals {
		got[v.Dimensions[DimSubscription]] = v.Value
	}
	if got["slow"] != 42 || got["fast"] != 0 || len(got) != 2 {
		t.Errorf("sampled lags %v, want slow 42, fast 0", got)
	}
	m := scrape()
	for _, want := range []string{`tether_event_subscription_lag_seconds{subscription="slow"} 42`, `tether_event_subscription_lag_seconds{subscription="fast"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	mu.Lock()
	deliv = deliv[1:]
	mu.Unlock()
	c.Sample(now.Add(time.Second))
	if m := scrape(); strings.Contains(m, `subscription="slow"`) {
		t.Error("a removed subscription keeps its lag series")
	}
}
