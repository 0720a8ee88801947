package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/api"
)

// gatedSink is an alertSink that answers 503 (and keeps nothing) while
// closed: a receiver that is down.
type gatedSink struct {
	alertSink
	closed  atomic.Bool
	refused atomic.Int64
}

func (s *gatedSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.closed.Load() {
		s.refused.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	s.alertSink.ServeHTTP(w, r)
}

// history is what h's API lists of the alert history of rule.
func (h *hub) history(rule string) ([]alert.Record, error) {
	st, body := h.api("GET", "/api/v1/alerts/history?rule="+rule, nil)
	var out api.AlertHistory
	if st != 200 || json.Unmarshal(body, &out) != nil {
		return nil, fmt.Errorf("GET /api/v1/alerts/history: %d %s", st, body)
	}
	return out.History, nil
}

// hasTransitions checks that every hub's history of rule is exactly the
// given transitions (condition and alert id), in order.
func hasTransitions(hubs []*hub, rule string, want ...alert.Record) error {
	for i, h := range hubs {
		got, err := h.history(rule)
		if err != nil {
			return err
		}
		if len(got) != len(want) {
			return fmt.Errorf("node %d's history of %s has %d transitions, want %d: %+v", i+1, rule, len(got), len(want), got)
		}
		for j := range want {
			if got[j].Condition != want[j].Condition || got[j].AlertID != want[j].AlertID {
				return fmt.Errorf("node %d's history of %s: transition %d is %s %s, want %s %s", i+1, rule, j, got[j].Condition, got[j].AlertID, want[j].Condition, want[j].AlertID)
			}
		}
	}
	return nil
}

// idle checks that the hubs' dispatchers hold nothing and have sent want
// notifications between them.
func idle(hubs []*hub, want uint64) error {
	var total uint64
	for i, h := range hubs {
		n, busy := h.sent()
		if busy {
			return fmt.Errorf("node %d's dispatcher is busy", i+1)
		}
		total += n
	}
	if total != want {
		return fmt.Errorf("%d notifications sent, want %d", total, want)
	}
	return nil
}

// The alerts leader stops between a condition change and its
// notification (it fired, but the receiver was down, so nothing went
// out): the next leader sends the Fired, and only it arrives, once; the
// Resolved, from the next leader too, names the same alert; the history
// every remaining node's API lists is the cluster's: those two
// transitions. Before the ledger, the next leader held the alert as fired
// and the Fired was never sent.
func TestClusterAlertNotifiedOnceAcrossALeaderStop(t *testing.T) {
	sink := &gatedSink{}
	web := httptest.NewServer(sink)
	defer web.Close()
	file := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, file, rulesFile("busy", ">", 0, web.URL))
	hubs := startClusterWithRules(t, file)
	waitServed(t, hubs, "busy", 0, "n1")

	leader := alertsLeader(t, hubs)
	var dev *hub
	var rest []*hub
	for _, h := range hubs {
		if h != leader {
			rest = append(rest, h)
			if dev == nil {
				dev = h
			}
		}
	}
	sink.closed.Store(true)
	key := dev.device("d1")
	waitDevice(t, hubs, "d1")
	c, rc := dev.v3("d1", username("d1"), dev.token("d1", key, time.Hour))
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	// The leader fired and tries to notify; the receiver is down.
	eventually(t, 60*time.Second, func() error {
		if n := sink.refused.Load(); n == 0 {
			return fmt.Errorf("no notification attempted yet (leader %s: busy is %s)", leader.Cluster().Name(), leader.ruleState("busy"))
		}
		return nil
	})
	if leader = alertsLeader(t, hubs); leader == dev {
		t.Skip("the alerts lead moved to the device's node meanwhile (a renewal missed under load); the test needs it elsewhere")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := leader.Stop(ctx); err != nil {
		t.Fatalf("stopping the alerts leader: %v", err)
	}
	sink.closed.Store(false)

	next := alertsLeader(t, rest)
	t.Logf("alerts leader %s stopped after %d refused attempts; %s leads", leader.Cluster().Name(), sink.refused.Load(), next.Cluster().Name())
	var fired alert.Record
	eventually(t, 60*time.Second, func() error {
		if got := sink.conditions("busy"); got["Fired"] != 1 || len(got) != 1 {
			return fmt.Errorf("notifications %v, want one Fired", got)
		}
		h, err := next.history("busy")
		if err != nil || len(h) != 1 {
			return fmt.Errorf("the next leader's history: %+v %v", h, err)
		}
		fired = h[0]
		return hasTransitions(rest, "busy", fired)
	})
	sink.mu.Lock()
	firedID := sink.got[0].p.Data.Essentials.AlertID
	sink.mu.Unlock()
	if path.Base(firedID) != fired.AlertID || fired.Condition != alert.Fired {
		t.Fatalf("the Fired sent names %s; the history holds %s %s", firedID, fired.Condition, fired.AlertID)
	}
	// Nothing more is on its way: the remaining nodes' dispatchers are
	// idle, and one of them sent the one notification.
	eventually(t, 60*time.Second, func() error { return idle(rest, 1) })

	c.Disconnect(100)
	eventually(t, 60*time.Second, func() error {
		if got := sink.conditions("busy"); got["Fired"] != 1 || got["Resolved"] != 1 || len(got) != 2 {
			return fmt.Errorf("notifications %v, want one Fired and one Resolved", got)
		}
		return hasTransitions(rest, "busy", fired, alert.Record{Condition: alert.Resolved, AlertID: fired.AlertID})
	})
	eventually(t, 60*time.Second, func() error { return idle(rest, 2) })
	if got := sink.conditions("busy"); got["Fired"] != 1 || got["Resolved"] != 1 || len(got) != 2 {
		t.Fatalf("notifications after all settled: %v, want one Fired and one Resolved", got)
	}
	sink.mu.Lock()
	resolvedID := sink.got[1].p.Data.Essentials.AlertID
	sink.mu.Unlock()
	if resolvedID != firedID {
		t.Fatalf("the Resolved names %s, the Fired %s", resolvedID, firedID)
	}
}
