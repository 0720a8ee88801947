package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/tether-hub/tether/internal/registry"
)

// Requests of a signed-in dashboard session carry no SAS token: the
// dashboard (internal/dashboard) checks the session cookie and the CSRF
// header, then marks the request with the session's policy. authorize
// applies that policy's rights as they are now, so a policy whose rights
// shrink or that is deleted loses its sessions' power at once.

type sessionPolicyKey struct{}

// WithSessionPolicy marks ctx as a request made by a signed-in session
// of shared access policy name. Only the dashboard's session check sets
// it; no request data can.
func WithSessionPolicy(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, sessionPolicyKey{}, name)
}

// sessionPolicy checks the rights of a session's policy against need; ok
// is false when ctx carries no session.
func (s *Server) sessionPolicy(ctx context.Context, need registry.Rights) (policy string, err error, ok bool) {
	name, ok := ctx.Value(sessionPolicyKey{}).(string)
	if !ok {
		return "", nil, false
	}
	p, found := s.d.Registry.Policy(name)
	if !found {
		return "", sessionRefused("the session's shared access policy '%s' no longer exists: sign in again", name), true
	}
	if missing := need &^ p.Rights; missing != 0 {
		return "", sessionRefused("policy '%s' lacks %s", p.Name, missing), true
	}
	return p.Name, nil, true
}

func sessionRefused(format string, a ...any) error {
	return &registry.Error{Code: registry.CodeUnauthorized, Status: http.StatusUnauthorized,
		Err: registry.ErrUnauthorized, Message: fmt.Sprintf(format, a...)}
}
