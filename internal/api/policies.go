package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tether-hub/tether/internal/registry"
)

// Shared access policies (/api/v1/policies): Tether's counterpart of
// `az iot hub policy list|show|create|update|delete|renew-key` (on Azure
// an ARM call, not the hub's own API). Every call needs a token of a
// policy with all rights: the answers carry keys, and whoever reads every
// key can do everything.
//
//	GET    /api/v1/policies                      {"value":[policy…]} (IoT Hub's listkeys shape)
//	POST   /api/v1/policies                      {"keyName","rights"[,"primaryKey","secondaryKey"]} → 201 policy
//	GET    /api/v1/policies/{name}               policy
//	PATCH  /api/v1/policies/{name}               {"rights"} → policy (keys unchanged)
//	DELETE /api/v1/policies/{name}               204
//	POST   /api/v1/policies/{name}/renew-key     {"key":"primary|secondary|both|swap"} → policy with its new keys

// PolicyList is the answer of GET /api/v1/policies.
type PolicyList struct {
	Value []registry.Policy `json:"value"`
}

// PolicyRightsUpdate is the body of PATCH /api/v1/policies/{name}.
type PolicyRightsUpdate struct {
	Rights registry.Rights `json:"rights"`
}

// RenewKeyRequest is the body of POST /api/v1/policies/{name}/renew-key.
type RenewKeyRequest struct {
	Key registry.KeySlot `json:"key"`
}

const maxPolicyBody = 4 << 10

// policies routes /api/v1/policies{rest}.
func (s *Server) policies(w http.ResponseWriter, r *http.Request, rest string) {
	rest = strings.TrimPrefix(rest, "/")
	name, action, _ := strings.Cut(rest, "/")
	if name != "" {
		n, err := url.PathUnescape(name)
		if err != nil {
			s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, "the policy name is not a valid path segment")
			return
		}
		name = n
	}
	var methods []string
	switch {
	case name == "":
		methods = []string{http.MethodGet, http.MethodPost}
	case action == "":
		methods = []string{http.MethodGet, http.MethodPatch, http.MethodDelete}
	case action == "renew-key":
		methods = []string{http.MethodPost}
	default:
		s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath())
		return
	}
	if !allow(w, r, s.v1Error, methods...) {
		return
	}
	caller, ok := s.authorize(w, r, registry.AllRights, s.v1Error)
	if !ok {
		return
	}
	reg := s.d.Registry
	switch {
	case name == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, PolicyList{Value: reg.Policies()})
	case name == "":
		var p registry.Policy
		if !s.decodePolicyBody(w, r, &p, `{"keyName":"…","rights":"RegistryRead, ServiceConnect"}`) {
			return
		}
		created, err := reg.CreatePolicy(r.Context(), p, caller)
		if err != nil {
			s.fail(w, r, err, s.v1Error)
			return
		}
		w.Header().Set("Location", "/api/v1/policies/"+url.PathEscape(created.Name))
		writeJSON(w, http.StatusCreated, created)
	case action == "renew-key":
		var req RenewKeyRequest
		if !s.decodePolicyBody(w, r, &req, `{"key":"primary"}`) {
			return
		}
		p, err := reg.RenewPolicyKey(r.Context(), name, req.Key, caller)
		if err != nil {
			s.fail(w, r, err, s.v1Error)
			return
		}
		writeJSON(w, http.StatusOK, p)
	case r.Method == http.MethodGet:
		p, found := reg.Policy(name)
		if !found {
			s.v1Error(w, r, http.StatusNotFound, registry.CodePolicyNotFound, fmt.Sprintf("no shared access policy named '%s'", name))
			return
		}
		writeJSON(w, http.StatusOK, p)
	case r.Method == http.MethodPatch:
		var up PolicyRightsUpdate
		if !s.decodePolicyBody(w, r, &up, `{"rights":"RegistryRead"}`) {
			return
		}
		p, err := reg.UpdatePolicyRights(r.Context(), name, up.Rights, caller)
		if err != nil {
			s.fail(w, r, err, s.v1Error)
			return
		}
		writeJSON(w, http.StatusOK, p)
	case r.Method == http.MethodDelete:
		if err := reg.DeletePolicy(r.Context(), name, caller); err != nil {
			s.fail(w, r, err, s.v1Error)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// decodePolicyBody reads a strict JSON body into v, or answers 400 with
// the shape expected.
func (s *Server) decodePolicyBody(w http.ResponseWriter, r *http.Request, v any, example string) bool {
	body, ok := s.readBody(w, r, maxPolicyBody, s.v1Error)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, fmt.Sprintf("invalid body: %v; send %s", err, example))
		return false
	}
	if dec.More() {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, "invalid body: more than one JSON value; send "+example)
		return false
	}
	return true
}
