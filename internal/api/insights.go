package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/registry"
)

// InsightSource answers from the insight engine (issue 13): a device's
// diagnosis, the fleet's flap scores and its mass-disconnect incidents.
type InsightSource interface {
	Diagnose(deviceID string, since, until time.Time) (insight.Diagnosis, error)
	Flapping(top int) []insight.FlapScore
	Incidents(limit int) []insight.Incident
	// Pending is how many journal events the engine has not applied yet.
	Pending() int64
}

// DefaultDiagnosisWindow is the window of a diagnosis without since.
const DefaultDiagnosisWindow = 7 * 24 * time.Hour

// diagnosisSuffix ends GET /api/v1/devices/{id}/diagnosis.
const diagnosisSuffix = "/diagnosis"

// getDiagnosis serves GET /api/v1/devices/{id}/diagnosis?since=&until=:
// since and until are RFC 3339 times or ages ("7d", "6h"); since defaults
// to 7 days before until, until to now.
func (s *Server) getDiagnosis(w http.ResponseWriter, r *http.Request, seg string) {
	if _, ok := s.authorize(w, r, registry.RegistryRead, s.v1Error); !ok {
		return
	}
	if s.d.Insights == nil {
		s.unavailable(w, r, "the insight engine")
		return
	}
	id, err := url.PathUnescape(seg)
	if err != nil || id == "" {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, "the device id in the path is not valid percent-encoding")
		return
	}
	q := r.URL.Query()
	bad := func(msg string) { s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, msg) }
	if err := checkParams(q, "since", "until"); err != nil {
		bad(err.Error())
		return
	}
	now := s.d.Now().UTC()
	until := now
	if v := q.Get("until"); v != "" {
		if until, err = connlog.ParseTimeArg(v, now); err != nil {
			bad("until: " + err.Error())
			return
		}
	}
	since := until.Add(-DefaultDiagnosisWindow)
	if v := q.Get("since"); v != "" {
		if since, err = connlog.ParseTimeArg(v, now); err != nil {
			bad("since: " + err.Error())
			return
		}
	}
	d, err := s.d.Insights.Diagnose(id, since, until)
	if errors.Is(err, insight.ErrWindow) {
		bad(err.Error())
		return
	}
	if err != nil {
		s.fail(w, r, err, s.v1Error)
		return
	}
	if d.Status == insight.StatusNoHistory {
		if _, ok := s.d.Registry.Device(id); !ok {
			s.v1Error(w, r, http.StatusNotFound, registry.CodeDeviceNotFound,
				fmt.Sprintf("device '%s' is not in the registry and has no connection history", id))
			return
		}
	}
	d.PendingEvents = s.d.Insights.Pending()
	writeJSON(w, http.StatusOK, d)
}

// flappingResponse is the answer of GET /api/v1/insights/flapping.
type flappingResponse struct {
	Devices []insight.FlapScore `json:"devices"`
}

// incidentsResponse is the answer of GET /api/v1/insights/incidents.
type incidentsResponse struct {
	Incidents []insight.Incident `json:"incidents"`
}

// insights routes /api/v1/insights/{flapping|incidents}.
func (s *Server) insights(w http.ResponseWriter, r *http.Request, rest string) {
	if rest != "/flapping" && rest != "/incidents" {
		s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath()+" (try /api/v1/insights/flapping or /api/v1/insights/incidents)")
		return
	}
	if !allow(w, r, s.v1Error, http.MethodGet) {
		return
	}
	if _, ok := s.authorize(w, r, registry.RegistryRead, s.v1Error); !ok {
		return
	}
	if s.d.Insights == nil {
		s.unavailable(w, r, "the insight engine")
		return
	}
	q := r.URL.Query()
	param := "top"
	if rest == "/incidents" {
		param = "limit"
	}
	if err := checkParams(q, param); err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error())
		return
	}
	n := 20
	if v := q.Get(param); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 0 {
			s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, fmt.Sprintf("%s %q: want a whole number ≥ 0 (0: all)", param, v))
			return
		}
		n = k
	}
	if rest == "/flapping" {
		out := s.d.Insights.Flapping(n)
		if out == nil {
			out = []insight.FlapScore{}
		}
		writeJSON(w, http.StatusOK, flappingResponse{Devices: out})
		return
	}
	out := s.d.Insights.Incidents(n)
	if out == nil {
		out = []insight.Incident{}
	}
	writeJSON(w, http.StatusOK, incidentsResponse{Incidents: out})
}

// isDiagnosisPath reports whether rest (after /api/v1/) is
// devices/{id}/diagnosis, and returns the escaped id.
func isDiagnosisPath(rest string) (string, bool) {
	seg, ok := strings.CutPrefix(rest, "devices/")
	if !ok {
		return "", false
	}
	seg, ok = strings.CutSuffix(seg, diagnosisSuffix)
	if !ok || seg == "" || strings.Contains(seg, "/") {
		return "", false
	}
	return seg, true
}
