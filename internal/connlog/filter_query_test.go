package connlog_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
)

func TestFilterQueryRoundTrip(t *testing.T) {
	f := connlog.Filter{DeviceID: "dev 1/ü", Category: connlog.CategoryConnections, Level: connlog.LevelError,
		Since: t0, Until: t0.Add(time.Hour), Limit: 250}
	q := f.Query()
	if q.Get("since") != "2025-06-01T12:00:00.123456789Z" {
		t.Errorf("since = %q", q.Get("since"))
	}
	back, err := connlog.FilterFromQuery(q, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if back != f {
		t.Fatalf("round trip: %+v, want %+v", back, f)
	}
	if got := (connlog.Filter{}).Query().Encode(); got != "" {
		t.Errorf("empty filter encodes as %q", got)
	}
}

func TestFilterFromQuery(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		query string
		want  connlog.Filter
	}{
		{"", connlog.Filter{Limit: connlog.DefaultQueryLimit}},
		{"level=error&category=connections", connlog.Filter{Level: "Error", Category: "Connections", Limit: 100}},
		{"level=info&category=DEVICEIDENTITYOPERATIONS", connlog.Filter{Level: "Information", Category: "DeviceIdentityOperations", Limit: 100}},
		{"since=1h&until=15m", connlog.Filter{Since: now.Add(-time.Hour), Until: now.Add(-15 * time.Minute), Limit: 100}},
		{"since=7d&limit=5", connlog.Filter{Since: now.AddDate(0, 0, -7), Limit: 5}},
		{"since=2025-05-31T10:00:00%2B02:00", connlog.Filter{Since: time.Date(2025, 5, 31, 8, 0, 0, 0, time.UTC), Limit: 100}},
		{"limit=999999", connlog.Filter{Limit: connlog.MaxQueryLimit}},
		{"device=thermo-1", connlog.Filter{DeviceID: "thermo-1", Limit: 100}},
	}
	for _, tc := range cases {
		q, _ := url.ParseQuery(tc.query)
		got, err := connlog.FilterFromQuery(q, now)
		if err != nil {
			t.Errorf("%q: %v", tc.query, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestFilterFromQueryReportsAllErrors(t *testing.T) {
	q, _ := url.ParseQuery("level=warning&category=Routes&since=yesterday&until=-5m&limit=0")
	_, err := connlog.FilterFromQuery(q, time.Now())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`level "warning"`, `category "Routes"`, "since:", "until:", `limit "0"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	q, _ = url.ParseQuery("since=1h&until=2h")
	if _, err := connlog.FilterFromQuery(q, time.Now()); err == nil || !strings.Contains(err.Error(), "not before") {
		t.Errorf("since after until: err = %v", err)
	}
}
