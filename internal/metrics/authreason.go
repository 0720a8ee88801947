package metrics

import "strings"

// Authentication failure causes (the Reason dimension of
// deviceAuthFailures). A refusal's event carries the cause as text
// (ConnectionEvent.Detail, the log's errorMessage); these are its
// low-cardinality classes, matched on the phrases internal/broker and
// internal/sas write. Order matters: the first match wins.
var authReasons = []struct{ phrase, reason string }{
	{"SAS token expired", "token-expired"},
	{"signature does not match", "bad-signature"},
	{"malformed SAS token", "malformed-token"},
	{"no key to verify", "bad-signature"},
	{"not base64", "bad-signature"},
	{"does not contain the specified device", "device-not-found"},
	{"is disabled", "device-disabled"},
	{"malformed MQTT username", "bad-username"},
	{"username names hub", "wrong-hub"},
	{"does not match the device id", "client-id-mismatch"},
	{"module identities are not supported", "module-not-supported"},
	{"no password", "no-token"},
	{"token is for", "wrong-resource"},
	{"no shared access policy", "unknown-policy"},
	{"needs DeviceConnect", "policy-lacks-device-connect"},
}

// AuthFailureReason classifies the detail of an auth-failed refusal.
func AuthFailureReason(detail string) string {
	for _, r := range authReasons {
		if strings.Contains(detail, r.phrase) {
			return r.reason
		}
	}
	return "other"
}
