package journal

import (
	"bytes"

	"github.com/tether-hub/tether/internal/presence"
)

// legacyAuthFailures classify an auth-failed refusal that carries no
// AuthFailure: every event the journal stored before the broker set the
// field (before 2026-12-06). Such an event has
// its cause only as text (Detail), written by internal/broker and
// internal/sas; these are the phrases of that text. The first match wins.
// Nothing outside this file looks at Detail to decide a cause.
var legacyAuthFailures = []struct {
	phrase string
	cause  presence.AuthFailure
}{
	{"SAS token expired", presence.AuthTokenExpired},
	{"signature does not match", presence.AuthBadSignature},
	{"malformed SAS token", presence.AuthMalformedToken},
	{"no key to verify", presence.AuthBadSignature},
	{"not base64", presence.AuthBadSignature},
	{"does not contain the specified device", presence.AuthDeviceNotFound},
	{"is disabled", presence.AuthDeviceDisabled},
	{"malformed MQTT username", presence.AuthBadUsername},
	{"username names hub", presence.AuthWrongHub},
	{"does not match the device id", presence.AuthClientIDMismatch},
	{"module identities are not supported", presence.AuthModuleNotSupported},
	{"no password", presence.AuthNoToken},
	{"token is for", presence.AuthWrongResource},
	{"no shared access policy", presence.AuthUnknownPolicy},
	{"needs DeviceConnect", presence.AuthPolicyLacksDeviceConnect},
}

// legacyAuthFailure is the AuthFailure of an auth-failed refusal stored
// without one, from its detail.
func legacyAuthFailure(detail []byte) presence.AuthFailure {
	for _, r := range legacyAuthFailures {
		if bytes.Contains(detail, []byte(r.phrase)) {
			return r.cause
		}
	}
	return presence.AuthOther
}

// needsAuthFailure reports whether an event of kind and reason with cause
// f must be given one from its detail.
func needsAuthFailure(kind presence.Kind, reason presence.Reason, f presence.AuthFailure) bool {
	return kind == presence.Refused && reason == presence.ReasonAuthFailed && f == presence.AuthNone
}
