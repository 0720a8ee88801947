package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/twin"
)

// Device twins as the azure-iothub Registry uses them: GET /twins/{id},
// PATCH /twins/{id} (tags and desired properties merged, If-Match
// optional) and PUT /twins/{id} (tags and desired replaced). All need a
// policy with ServiceConnect, as on IoT Hub.

// maxTwinBody bounds a twin write: IoT Hub's 8 KB of tags and 32 KB of
// desired properties, plus room for the envelope.
const maxTwinBody = 64 << 10

// twinsCall serves /twins/{id} and /twins/{id}/methods.
func (s *Server) twinsCall(w http.ResponseWriter, r *http.Request, rest string) {
	seg, sub, hasSub := strings.Cut(rest, "/")
	switch {
	case hasSub && sub == "methods":
		if !allow(w, r, s.azureError, http.MethodPost) || !s.apiVersion(w, r) {
			return
		}
		if id, ok := s.pathID(w, r, seg); ok {
			s.postMethod(w, r, id)
		}
	case !hasSub:
		if !allow(w, r, s.azureError, http.MethodGet, http.MethodPatch, http.MethodPut) || !s.apiVersion(w, r) {
			return
		}
		if id, ok := s.pathID(w, r, seg); ok {
			s.twin(w, r, id)
		}
	default:
		s.azureError(w, r, http.StatusNotFound, "NotFound", fmt.Sprintf("%s is not served: Tether serves /twins/{id} and /twins/{id}/methods (no modules)", r.URL.EscapedPath()))
	}
}

func (s *Server) twin(w http.ResponseWriter, r *http.Request, id string) {
	policy, ok := s.authorize(w, r, registry.ServiceConnect, s.azureError)
	if !ok {
		return
	}
	name := map[string]string{http.MethodGet: journal.OpRead, http.MethodPatch: journal.OpUpdate, http.MethodPut: journal.OpReplace}[r.Method]
	op := s.newOp(r, policy, journal.CategoryC2DTwinOperations, name, id)
	var t *twin.Twin
	switch r.Method {
	case http.MethodGet:
		var found bool
		if t, found = s.d.Registry.Twin(id); !found {
			s.twinNotFound(w, r, op, id)
			return
		}
	default:
		body, ok := s.readBody(w, r, maxTwinBody, s.azureError)
		if !ok {
			return
		}
		op.op.RequestSize = int64(len(body))
		ifMatch, now := r.Header.Get("If-Match"), s.d.Now()
		var err error
		t, err = s.d.Registry.UpdateTwin(r.Context(), id, func(t *twin.Twin) ([]byte, error) {
			if !t.MatchETag(ifMatch) {
				return nil, twin.PreconditionFailed(ifMatch, t.ETag())
			}
			if r.Method == http.MethodPut {
				return t.ServiceReplace(body, now)
			}
			return t.ServicePatch(body, now)
		})
		if err != nil {
			op.failed(err)
			s.fail(w, r, err, s.azureError)
			return
		}
	}
	info, found := s.d.Registry.TwinInfo(id)
	if !found {
		s.twinNotFound(w, r, op, id)
		return
	}
	out := t.ServiceJSON(info)
	op.op.ResponseSize = int64(len(out))
	op.done(http.StatusOK, "", "")
	w.Header().Set("ETag", `"`+t.ETag()+`"`)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func (s *Server) twinNotFound(w http.ResponseWriter, r *http.Request, op *opRecord, id string) {
	msg := fmt.Sprintf("device '%s' is not registered", id)
	op.done(http.StatusNotFound, "404001", msg)
	s.azureError(w, r, http.StatusNotFound, registry.CodeDeviceNotFound, msg)
}
