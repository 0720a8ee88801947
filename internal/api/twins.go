package api

import (
	"fmt"
	"net/http"
	"strings"
)

// twinsCall serves /twins/{id} and /twins/{id}/methods.
func (s *Server) twinsCall(w http.ResponseWriter, r *http.Request, rest string) {
	seg, sub, _ := strings.Cut(rest, "/")
	switch sub {
	case "methods":
		if !allow(w, r, s.azureError, http.MethodPost) || !s.apiVersion(w, r) {
			return
		}
		if id, ok := s.pathID(w, r, seg); ok {
			s.postMethod(w, r, id)
		}
	default:
		s.azureError(w, r, http.StatusNotFound, "NotFound", fmt.Sprintf("%s is not served: Tether serves /twins/{id} and /twins/{id}/methods (no modules)", r.URL.EscapedPath()))
	}
}
