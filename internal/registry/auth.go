package registry

import (
	"errors"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/sas"
)

// Authorize checks a service token (the Authorization header of a REST
// call): it must be signed with a key of the shared access policy it names
// (skn), that policy must have every right in need, the token must not be
// expired, and its sr must be the hub or a path-segment prefix of the
// registry endpoints ("<hub>" or "<hub>/devices"). It returns the policy
// name, or an *Error (IotHubUnauthorizedAccess, 401) saying what is wrong.
//
// The signature is checked before the rights, so a caller without a key
// learns nothing about the policies.
func (r *Registry) Authorize(token string, need Rights, now time.Time) (string, error) {
	if strings.TrimSpace(token) == "" {
		return "", unauthorized("no SharedAccessSignature token: send one of a shared access policy in the Authorization header")
	}
	tok, err := sas.Parse(token)
	if err != nil {
		return "", unauthorized("%v", err)
	}
	if tok.KeyName == "" {
		return "", unauthorized("the token has no skn: service calls need a token signed with a shared access policy key (a device key cannot call the service API)")
	}
	p, ok := r.Policy(tok.KeyName)
	if !ok {
		return "", unauthorized("no shared access policy named '%s'", tok.KeyName)
	}
	err = tok.Verify(p.PrimaryKey, now)
	if errors.Is(err, sas.ErrSignature) {
		err = tok.Verify(p.SecondaryKey, now)
	}
	switch {
	case errors.Is(err, sas.ErrSignature):
		return "", unauthorized("the token signature does not match either key of policy '%s'", p.Name)
	case errors.Is(err, sas.ErrExpired):
		return "", unauthorized("SAS token expired at %s", tok.Expiry.Format(time.RFC3339))
	case err != nil:
		return "", unauthorized("policy '%s' cannot verify tokens: %v", p.Name, err)
	}
	if !r.serviceResource(tok.Resource) {
		return "", unauthorized("the token is for '%s'; service calls need sr '%s' (or '%s/devices')", tok.Resource, r.opts.HubName, r.opts.HubName)
	}
	if missing := need &^ p.Rights; missing != 0 {
		return "", unauthorized("policy '%s' lacks %s", p.Name, missing)
	}
	return p.Name, nil
}

// serviceResource reports whether sr covers the hub's service endpoints.
// Matching is by path segment (iothub-facts §6.1) and case-insensitive, as
// the docs ask for lower-cased resource URIs but SDKs keep the case.
func (r *Registry) serviceResource(sr string) bool {
	sr = strings.TrimSuffix(sr, "/")
	host, rest, _ := strings.Cut(sr, "/")
	if !strings.EqualFold(host, r.opts.HubName) {
		return false
	}
	return rest == "" || strings.EqualFold(rest, "devices")
}
