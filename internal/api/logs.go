package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/tether-hub/tether/internal/registry"
)

const (
	defaultLogLimit = 100
	maxLogLimit     = 10000
)

// logsResponse is the answer of GET /api/v1/logs: the newest records
// first-to-last as the log store returns them.
type logsResponse struct {
	Records []map[string]any `json:"records"`
}

// getLogs serves GET /api/v1/logs?device=&category=&level=&since=&until=&limit=.
func (s *Server) getLogs(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, registry.RegistryRead, s.v1Error); !ok {
		return
	}
	if s.d.Logs == nil {
		s.unavailable(w, r, "the log store")
		return
	}
	q := r.URL.Query()
	bad := func(msg string) {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, msg)
	}
	if err := checkParams(q, "device", "category", "level", "since", "until", "limit"); err != nil {
		bad(err.Error())
		return
	}
	now := s.d.Now()
	f := LogFilter{DeviceID: q.Get("device"), Category: q.Get("category"), Level: q.Get("level"), Limit: defaultLogLimit}
	var err error
	if f.Since, err = parseTimeArg("since", q.Get("since"), now); err != nil {
		bad(err.Error())
		return
	}
	if f.Until, err = parseTimeArg("until", q.Get("until"), now); err != nil {
		bad(err.Error())
		return
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		bad(fmt.Sprintf("since (%s) must be before until (%s)", f.Since.Format("2006-01-02T15:04:05Z07:00"), f.Until.Format("2006-01-02T15:04:05Z07:00")))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLogLimit {
			bad(fmt.Sprintf("limit %q must be a number from 1 to %d", v, maxLogLimit))
			return
		}
		f.Limit = n
	}
	recs, err := s.d.Logs.Find(r.Context(), f)
	if err != nil {
		s.fail(w, r, err, s.v1Error)
		return
	}
	if recs == nil {
		recs = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, logsResponse{Records: recs})
}
