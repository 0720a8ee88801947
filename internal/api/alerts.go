package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/alert"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
)

// AlertService is the hub's alert rules engine as the API sees it: rules
// come from a rules file (tether serve --rules; in a cluster the last one
// a node reloaded, kept in a replicated bucket), so the API reads state
// and history and asks for a reload; it does not edit rules.
type AlertService interface {
	// Rules lists every rule with its state and alert instances.
	Rules(ctx context.Context) []alert.RuleStatus
	// History lists transitions (alert.HistoryQuery).
	History(ctx context.Context, q alert.HistoryQuery) []alert.Record
	// Reload reads the rules file again (as SIGHUP does) and puts it in
	// force on every node. A file with problems changes nothing and
	// returns an error matching alert.ErrInvalidRules (a
	// *alert.LoadError lists them); ErrNoRulesFile when the hub runs
	// without one.
	Reload(ctx context.Context) (ReloadResult, error)
	// Source is where the rules in force came from; nil when none are.
	Source(ctx context.Context) *ReloadResult
	// Destinations lists the action groups' send loops and the number of
	// notifications the rate limits suppressed.
	Destinations(ctx context.Context) ([]alert.DestinationStats, uint64)
}

// ErrNoRulesFile answers a reload on a hub started without --rules.
var ErrNoRulesFile = errors.New("the hub runs without a rules file: start it with --rules FILE")

// ReloadResult answers POST /api/v1/alerts/reload, and says where the
// rules in force came from (AlertList.Source).
type ReloadResult struct {
	File         string    `json:"file"`
	Rules        int       `json:"rules"`
	ActionGroups int       `json:"actionGroups"`
	LoadedAt     time.Time `json:"loadedAt"`
	// Revision is the rules' revision in the replicated bucket
	// (tether_alert_rules) and LoadedBy the node that read the file.
	Revision uint64 `json:"revision,omitempty"`
	LoadedBy string `json:"loadedBy,omitempty"`
}

// AlertList is the answer of GET /api/v1/alerts.
type AlertList struct {
	Rules []alert.RuleStatus `json:"rules"`
	// Source is the file, revision and node of the rules in force;
	// absent when none are.
	Source *ReloadResult `json:"source,omitempty"`
}

// AlertHistory is the answer of GET /api/v1/alerts/history.
type AlertHistory struct {
	History []alert.Record `json:"history"`
}

// AlertDestinations is the answer of GET /api/v1/alerts/actions.
type AlertDestinations struct {
	Destinations []alert.DestinationStats `json:"destinations"`
	RateLimited  uint64                   `json:"rateLimited"`
}

// RulesProblems is the 400 body of a refused reload: every problem of the
// file with its position.
type RulesProblems struct {
	Error struct {
		Code     string   `json:"code"`
		Message  string   `json:"message"`
		Problems []string `json:"problems"`
	} `json:"error"`
}

const (
	defaultAlertHistory = 100
	maxAlertHistory     = 10000
)

// alerts routes /api/v1/alerts{rest}.
//
//	""          GET   rules, state and alert instances (?state=Fired: only rules with fired alerts)
//	"/history"  GET   transitions (?rule=&alert=&since=&limit=)
//	"/actions"  GET   destinations and their counters
//	"/reload"   POST  read the rules file again
func (s *Server) alerts(w http.ResponseWriter, r *http.Request, rest string) {
	method := http.MethodGet
	if rest == "/reload" {
		method = http.MethodPost
	}
	switch rest {
	case "", "/", "/history", "/actions", "/reload":
	default:
		s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath())
		return
	}
	if !allow(w, r, s.v1Error, method) {
		return
	}
	if rest == "/reload" {
		s.reloadAlerts(w, r)
		return
	}
	if _, ok := s.authorize(w, r, registry.ServiceConnect, s.v1Error); !ok {
		return
	}
	if s.d.Alerts == nil {
		s.unavailable(w, r, "alerting")
		return
	}
	bad := func(msg string) { s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, msg) }
	q := r.URL.Query()
	switch rest {
	case "", "/":
		if err := checkParams(q, "state"); err != nil {
			bad(err.Error())
			return
		}
		state := q.Get("state")
		if state != "" && !strings.EqualFold(state, string(alert.Fired)) && !strings.EqualFold(state, string(alert.Inactive)) {
			bad("state: Fired or Inactive")
			return
		}
		out := AlertList{Rules: []alert.RuleStatus{}, Source: s.d.Alerts.Source(r.Context())}
		for _, rs := range s.d.Alerts.Rules(r.Context()) {
			if state == "" || strings.EqualFold(state, string(rs.State)) {
				out.Rules = append(out.Rules, rs)
			}
		}
		writeJSON(w, http.StatusOK, out)
	case "/history":
		if err := checkParams(q, "rule", "alert", "since", "limit"); err != nil {
			bad(err.Error())
			return
		}
		hq := alert.HistoryQuery{Rule: q.Get("rule"), AlertID: q.Get("alert"), Limit: defaultAlertHistory}
		if v := q.Get("since"); v != "" {
			t, err := connlog.ParseTimeArg(v, s.d.Now())
			if err != nil {
				bad("since: " + err.Error())
				return
			}
			hq.Since = t
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxAlertHistory {
				bad("limit: a number from 1 to " + strconv.Itoa(maxAlertHistory))
				return
			}
			hq.Limit = n
		}
		out := AlertHistory{History: s.d.Alerts.History(r.Context(), hq)}
		if out.History == nil {
			out.History = []alert.Record{}
		}
		writeJSON(w, http.StatusOK, out)
	case "/actions":
		d, n := s.d.Alerts.Destinations(r.Context())
		if d == nil {
			d = []alert.DestinationStats{}
		}
		writeJSON(w, http.StatusOK, AlertDestinations{Destinations: d, RateLimited: n})
	}
}

// reloadAlerts serves POST /api/v1/alerts/reload: a configuration change
// (ConfigRights), recorded with the rules before and after.
func (s *Server) reloadAlerts(w http.ResponseWriter, r *http.Request) {
	c, w, ok := s.beginChange(w, r, journal.OpAlertRulesReload, AlertRulesTarget, 0, func(string) any {
		if s.d.Alerts == nil {
			return nil
		}
		return AlertRulesDefinition(s.d.Alerts.Rules(context.Background()))
	})
	if !ok {
		return
	}
	defer c.end()
	if s.d.Alerts == nil {
		s.unavailable(w, r, "alerting")
		return
	}
	res, err := s.d.Alerts.Reload(r.Context())
	var le *alert.LoadError
	switch {
	case errors.As(err, &le):
		var b RulesProblems
		b.Error.Code, b.Error.Message = registry.CodeArgumentInvalid, "the rules file has problems; the rules in force are unchanged"
		for _, p := range le.Problems {
			b.Error.Problems = append(b.Error.Problems, p.Error())
		}
		writeJSON(w, http.StatusBadRequest, b)
	case errors.Is(err, ErrNoRulesFile):
		s.v1Error(w, r, http.StatusConflict, "NoRulesFile", err.Error())
	case err != nil:
		s.fail(w, r, err, s.v1Error)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// AlertRulesTarget is the Target of an alert-rules reload record.
const AlertRulesTarget = "alertRules"

// AlertRulesDefinition is what an alert-rules reload record keeps of the
// rules in force (Before, After): each rule's definition, without its
// state.
func AlertRulesDefinition(rules []alert.RuleStatus) any {
	type rule struct {
		Name         string            `json:"name"`
		Kind         alert.Kind        `json:"kind"`
		Enabled      bool              `json:"enabled"`
		Frequency    string            `json:"evaluationFrequency"`
		Window       string            `json:"windowSize"`
		Metric       string            `json:"metric,omitempty"`
		Query        string            `json:"query,omitempty"`
		Aggregation  alert.Aggregation `json:"timeAggregation"`
		Operator     alert.Operator    `json:"operator"`
		Threshold    float64           `json:"threshold"`
		ActionGroups []string          `json:"actionGroups"`
	}
	out := []rule{}
	for _, r := range rules {
		out = append(out, rule{Name: r.Name, Kind: r.Kind, Enabled: r.Enabled, Frequency: r.Frequency, Window: r.Window,
			Metric: r.Metric, Query: r.Query, Aggregation: r.Aggregation, Operator: r.Operator, Threshold: r.Threshold,
			ActionGroups: r.ActionGroups})
	}
	return map[string]any{"rules": out}
}
