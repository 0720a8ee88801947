package broker

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/sas"
	"github.com/tether-hub/tether/internal/x509auth"
)

// Credentials are what the registry holds to authenticate a device.
type Credentials struct {
	// Type is the device's authentication type: "sas" (or ""),
	// "selfSigned" or "certificateAuthority".
	Type string
	// Keys are a SAS device's two keys ("" when unset).
	Keys [2]string
	// Thumbprints are a selfSigned device's primary and secondary
	// certificate thumbprints, upper-case hex ("" when unset).
	Thumbprints [2]string
	Enabled     bool
}

// Authentication types of Credentials.Type (the registry's spelling).
const (
	authSAS        = "sas"
	authSelfSigned = "selfSigned"
	authCA         = "certificateAuthority"
)

func (c Credentials) x509() bool { return c.Type == authSelfSigned || c.Type == authCA }

// DeviceLookup returns a device's credentials, and whether it exists.
type DeviceLookup func(deviceID string) (c Credentials, found bool)

// AuthorityLookup returns the CAs registered for X.509 authentication
// (nil: none).
type AuthorityLookup func() *x509auth.Authorities

// PolicyLookup returns a shared access policy's keys and whether it grants
// DeviceConnect.
type PolicyLookup func(name string) (keys [2]string, deviceConnect, found bool)

// refusal is why a CONNECT was refused: what the device sees (CONNACK codes)
// and what the log records.
type refusal struct {
	v3, v5 packets.Code
	reason presence.Reason
	result presence.Result
	auth   presence.AuthFailure // set for ReasonAuthFailed
	detail string
}

func (r *refusal) Error() string { return r.detail }

func authRefusal(f presence.AuthFailure, v5 packets.Code, detail string, a ...any) *refusal {
	return &refusal{
		v3: packets.Err3NotAuthorized, v5: v5,
		reason: presence.ReasonAuthFailed, result: presence.ResultUnauthorized, auth: f,
		detail: fmt.Sprintf(detail, a...),
	}
}

// tokenRefusal refuses a token that did not parse or verify, typed by the
// sas package's sentinel errors.
func tokenRefusal(err error) *refusal {
	f := presence.AuthOther
	switch {
	case errors.Is(err, sas.ErrExpired):
		f = presence.AuthTokenExpired
	case errors.Is(err, sas.ErrSignature):
		f = presence.AuthBadSignature
	case errors.Is(err, sas.ErrMalformed):
		f = presence.AuthMalformedToken
	}
	return authRefusal(f, packets.ErrBadUsernameOrPassword, "%v", err)
}

// protocolRefusal refuses a CONNECT the protocol does not allow (400000).
// A zero code means no CONNACK is sent for that protocol version.
func protocolRefusal(v3, v5 packets.Code, detail string, a ...any) *refusal {
	return &refusal{v3: v3, v5: v5, reason: presence.ReasonProtocolError, result: presence.ResultBadRequest, detail: fmt.Sprintf(detail, a...)}
}

// identity is what a successful authentication established.
type identity struct {
	deviceID, moduleID string
	sdkVersion         string
	authType           string
	tokenExpiry        time.Time
}

// authenticate checks a CONNECT the way IoT Hub does: client id equals the
// device id, username names this hub and that device, and either the
// password is a SAS token for that device signed by its key (or by a
// policy with DeviceConnect), not expired, or the password is empty and the
// TLS client certificate (chain, as the device sent it) authenticates an
// X.509 device (certauth.go); the device exists and is enabled. Signature
// comes before status, so an unauthenticated caller learns nothing about
// the registry beyond "not authorized".
func (b *Broker) authenticate(clientID string, username, password []byte, chain []*x509.Certificate, now time.Time) (identity, *refusal) {
	var id identity
	u, err := sas.ParseUsername(string(username))
	if err != nil {
		return id, authRefusal(presence.AuthBadUsername, packets.ErrBadUsernameOrPassword, "%v", err)
	}
	id.deviceID, id.moduleID, id.sdkVersion = u.DeviceID, u.ModuleID, u.DeviceClientType
	if u.Host != b.opts.HubName {
		return id, authRefusal(presence.AuthWrongHub, packets.ErrBadUsernameOrPassword, "username names hub %q, this hub is %q", u.Host, b.opts.HubName)
	}
	wantClient := u.DeviceID
	if u.ModuleID != "" {
		wantClient += "/" + u.ModuleID
	}
	if clientID != wantClient {
		return id, &refusal{
			v3: packets.Err3ClientIdentifierNotValid, v5: packets.ErrClientIdentifierNotValid,
			reason: presence.ReasonAuthFailed, result: presence.ResultUnauthorized, auth: presence.AuthClientIDMismatch,
			detail: fmt.Sprintf("client id %q does not match the device id %q in the username", clientID, wantClient),
		}
	}
	if u.ModuleID != "" {
		return id, authRefusal(presence.AuthModuleNotSupported, packets.ErrNotAuthorized, "module identities are not supported (module %q)", u.ModuleID)
	}
	if len(password) == 0 {
		return b.authenticateCertificate(id, chain, now)
	}
	tok, err := sas.Parse(string(password))
	if err != nil {
		return id, tokenRefusal(err)
	}
	want := sas.DeviceResource(b.opts.HubName, u.DeviceID)
	var keys [2]string
	if tok.KeyName == "" {
		if tok.Resource != want {
			return id, authRefusal(presence.AuthWrongResource, packets.ErrNotAuthorized, "token is for %q, not %q", tok.Resource, want)
		}
		cred, found := b.opts.Devices(u.DeviceID)
		if !found {
			// The token cannot be checked without the device's key.
			return id, b.deviceRefusal(u.DeviceID, false, found)
		}
		if cred.x509() {
			id.authType = cred.Type
			return id, authRefusal(presence.AuthX509DeviceToken, packets.ErrBadUsernameOrPassword,
				"device '%s' authenticates with an X.509 certificate (authentication type %s): connect with its client certificate and an empty password, not a SAS token", u.DeviceID, cred.Type)
		}
		keys = cred.Keys
		if err := verifyEither(tok, keys, now); err != nil {
			return id, tokenRefusal(err)
		}
		if ref := b.deviceRefusal(u.DeviceID, cred.Enabled, found); ref != nil {
			return id, ref
		}
		id.authType = authSAS
	} else {
		if !segmentPrefix(tok.Resource, want) {
			return id, authRefusal(presence.AuthWrongResource, packets.ErrNotAuthorized, "token is for %q, which does not cover %q", tok.Resource, want)
		}
		pkeys, deviceConnect, found := b.opts.Policies(tok.KeyName)
		if !found {
			return id, authRefusal(presence.AuthUnknownPolicy, packets.ErrNotAuthorized, "no shared access policy named '%s'", tok.KeyName)
		}
		if err := verifyEither(tok, pkeys, now); err != nil {
			return id, tokenRefusal(err)
		}
		if !deviceConnect {
			return id, authRefusal(presence.AuthPolicyLacksDeviceConnect, packets.ErrNotAuthorized, "Authorization rule '%s' does not allow access for '%s' (needs DeviceConnect)", tok.KeyName, want)
		}
		if cred, found := b.opts.Devices(u.DeviceID); !found || !cred.Enabled {
			return id, b.deviceRefusal(u.DeviceID, cred.Enabled, found)
		}
		id.authType = "policy:" + tok.KeyName
	}
	id.tokenExpiry = tok.Expiry
	return id, nil
}

// deviceRefusal refuses a device the registry does not hold, or holds
// disabled; nil when it may connect.
func (b *Broker) deviceRefusal(deviceID string, enabled, found bool) *refusal {
	switch {
	case !found:
		return authRefusal(presence.AuthDeviceNotFound, packets.ErrNotAuthorized, "IotHub '%s' does not contain the specified device '%s'", b.opts.HubName, deviceID)
	case !enabled:
		return authRefusal(presence.AuthDeviceDisabled, packets.ErrNotAuthorized, "device '%s' is disabled", deviceID)
	}
	return nil
}

// verifyEither accepts a token signed by either key; an expiry error wins
// over a signature error so the device is told the useful thing.
func verifyEither(tok sas.Token, keys [2]string, now time.Time) error {
	var first error
	for _, k := range keys {
		if k == "" {
			continue
		}
		err := tok.Verify(k, now)
		if err == nil {
			return nil
		}
		if first == nil || errors.Is(err, sas.ErrExpired) {
			first = err
		}
	}
	if first == nil {
		first = fmt.Errorf("%w: no key to verify the token with", sas.ErrSignature)
	}
	return first
}

// segmentPrefix reports whether scope covers resource by whole path
// segments ("/a/b" covers "/a/b/c", not "/a/bc").
func segmentPrefix(scope, resource string) bool {
	scope = strings.TrimSuffix(scope, "/")
	return resource == scope || strings.HasPrefix(resource, scope+"/")
}
