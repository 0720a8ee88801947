package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tether-hub/tether/internal/diag"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
)

// DiagnosticSettings manages the routing of resource logs
// (/api/v1/diagnostic-settings); the app implements it with
// diag.Manager. Errors are diag's sentinels: ErrInvalid (a
// *diag.ValidationError), ErrNotFound, ErrExists, ErrBuiltIn.
type DiagnosticSettings interface {
	List(ctx context.Context) ([]diag.Setting, error)
	Get(ctx context.Context, name string) (diag.Setting, error)
	Create(ctx context.Context, s diag.Setting) (diag.Setting, error)
	Update(ctx context.Context, s diag.Setting) (diag.Setting, error)
	Delete(ctx context.Context, name string) error
}

// DiagnosticSettingList is the answer of GET /api/v1/diagnostic-settings
// (Azure lists them under "value").
type DiagnosticSettingList struct {
	Value []diag.Setting `json:"value"`
}

// Error codes of the diagnostic-settings endpoints.
const (
	CodeDiagnosticSettingNotFound = "DiagnosticSettingNotFound"
	CodeDiagnosticSettingExists   = "DiagnosticSettingAlreadyExists"
	CodeBuiltInSetting            = "BuiltInDiagnosticSetting"
)

const maxSettingBody = 64 << 10

// diagnosticSettings routes /api/v1/diagnostic-settings{rest}:
//
//	"" "/"     GET list, POST create
//	"/{name}"  GET, PUT (create or replace), DELETE
func (s *Server) diagnosticSettings(w http.ResponseWriter, r *http.Request, rest string) {
	if rest == "" || rest == "/" {
		if !allow(w, r, s.v1Error, http.MethodGet, http.MethodPost) {
			return
		}
		if r.Method == http.MethodPost {
			if c, w, ok := s.diagChange(w, r, journal.OpDiagnosticSettingWrite, ""); ok {
				defer c.end()
				s.writeSetting(w, r, "")
			}
			return
		}
		if !s.diagAuth(w, r) {
			return
		}
		list, err := s.d.DiagnosticSettings.List(r.Context())
		if err != nil {
			s.diagFail(w, r, "", err)
			return
		}
		writeJSON(w, http.StatusOK, DiagnosticSettingList{Value: list})
		return
	}
	seg := strings.TrimPrefix(rest, "/")
	name, err := url.PathUnescape(seg)
	if err != nil || seg == "" || strings.Contains(seg, "/") {
		s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath())
		return
	}
	if !allow(w, r, s.v1Error, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	if r.Method != http.MethodGet {
		opName := journal.OpDiagnosticSettingWrite
		if r.Method == http.MethodDelete {
			opName = journal.OpDiagnosticSettingDelete
		}
		c, w, ok := s.diagChange(w, r, opName, name)
		if !ok {
			return
		}
		defer c.end()
		if r.Method == http.MethodPut {
			s.writeSetting(w, r, name)
		} else if err := s.d.DiagnosticSettings.Delete(r.Context(), name); err != nil {
			s.diagFail(w, r, name, err)
		} else {
			w.WriteHeader(http.StatusNoContent)
		}
		return
	}
	if !s.diagAuth(w, r) {
		return
	}
	st, err := s.d.DiagnosticSettings.Get(r.Context(), name)
	if err != nil {
		s.diagFail(w, r, name, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// diagChange begins a change of setting name ("" for a create by POST):
// the owner's rights (ConfigRights), the hub's settings present, and an
// Administrative record when it ends.
func (s *Server) diagChange(w http.ResponseWriter, r *http.Request, opName, name string) (*adminChange, http.ResponseWriter, bool) {
	c, cw, ok := s.beginChange(w, r, opName, name, maxSettingBody, func(n string) any {
		if s.d.DiagnosticSettings == nil {
			return nil
		}
		st, err := s.d.DiagnosticSettings.Get(context.Background(), n)
		if err != nil {
			return nil
		}
		return st
	})
	if ok && s.d.DiagnosticSettings == nil {
		s.unavailable(cw, r, "diagnostic settings")
		c.end()
		return nil, nil, false
	}
	return c, cw, ok
}

// diagAuth checks the token (ServiceConnect, as for subscriptions) and
// that the hub has diagnostic settings.
func (s *Server) diagAuth(w http.ResponseWriter, r *http.Request) bool {
	return s.serviceAuth(w, r, s.d.DiagnosticSettings != nil, "diagnostic settings")
}

// writeSetting serves POST (name "": create, 201) and PUT /{name} (create,
// 201, or replace, 200). The body's name may be left out of a PUT; when
// given it must be the path's.
func (s *Server) writeSetting(w http.ResponseWriter, r *http.Request, name string) {
	body, ok := s.readBody(w, r, maxSettingBody, s.v1Error)
	if !ok {
		return
	}
	var st diag.Setting
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, "the body is not a diagnostic setting: "+err.Error())
		return
	}
	if name != "" {
		if st.Name != "" && !strings.EqualFold(st.Name, name) {
			s.diagFail(w, r, name, &diag.ValidationError{Errors: []diag.FieldError{{Field: "name", Message: fmt.Sprintf("%q differs from the name in the path, %q", st.Name, name)}}})
			return
		}
		st.Name = name
	}
	ctx := r.Context()
	status := http.StatusCreated
	var out diag.Setting
	var err error
	if name == "" {
		out, err = s.d.DiagnosticSettings.Create(ctx, st)
	} else if out, err = s.d.DiagnosticSettings.Update(ctx, st); errors.Is(err, diag.ErrNotFound) {
		out, err = s.d.DiagnosticSettings.Create(ctx, st)
	} else {
		status = http.StatusOK
	}
	if err != nil {
		s.diagFail(w, r, st.Name, err)
		return
	}
	w.Header().Set("Location", "/api/v1/diagnostic-settings/"+url.PathEscape(out.Name))
	writeJSON(w, status, out)
}

func (s *Server) diagFail(w http.ResponseWriter, r *http.Request, name string, err error) {
	var ve *diag.ValidationError
	switch {
	case errors.As(err, &ve):
		// The same body as for a refused subscription.
		var b InvalidError
		b.Error.Code = registry.CodeArgumentInvalid
		b.Error.Message = fmt.Sprintf("the diagnostic setting has %d problem%s: %s", len(ve.Errors), plural(len(ve.Errors)), ve.Error())
		b.Error.Details = make([]events.FieldError, len(ve.Errors))
		for i, fe := range ve.Errors {
			b.Error.Details[i] = events.FieldError{Field: fe.Field, Message: fe.Message}
		}
		writeJSON(w, http.StatusBadRequest, b)
	case errors.Is(err, diag.ErrNotFound):
		s.v1Error(w, r, http.StatusNotFound, CodeDiagnosticSettingNotFound, fmt.Sprintf("there is no diagnostic setting named %q", name))
	case errors.Is(err, diag.ErrExists):
		s.v1Error(w, r, http.StatusConflict, CodeDiagnosticSettingExists,
			fmt.Sprintf("a diagnostic setting named %q already exists (names are unique without regard to case); replace it with PUT", name))
	case errors.Is(err, diag.ErrBuiltIn):
		s.v1Error(w, r, http.StatusConflict, CodeBuiltInSetting, err.Error())
	default:
		s.fail(w, r, err, s.v1Error)
	}
}
