package api

import (
	"net/http"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/registry"
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
	f, err := connlog.FilterFromQuery(q, s.d.Now())
	if err != nil {
		bad(err.Error())
		return
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
