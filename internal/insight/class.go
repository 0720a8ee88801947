package insight

import (
	"strings"

	"github.com/tether-hub/tether/internal/presence"
)

// Class is what one connection event means for diagnosis. Every event gets
// exactly one; the per-device counters count events by class.
type Class uint8

const (
	// ClassConnect: a connect that is neither a renewal, a probe's nor the
	// return after a hub-side end. These are the flap score's reconnects.
	ClassConnect Class = iota
	// ClassRenewal: a connect completing a SAS renewal after a client
	// DISCONNECT, whose renewed session lasted at least half of its token's
	// lifetime (a renewal that early is an SDK's; shorter is a reconnect).
	ClassRenewal
	// ClassRenewalExpiry: the same after the hub closed the session at token
	// expiry (.NET and Java over MQTT renew that way: 401003 + 404104).
	ClassRenewalExpiry
	// ClassReturn: a connect that is not the device's trouble: its first,
	// or one after a hub-side end (restart, shutdown, server error), a
	// probe or an administrator (disabled, then enabled again).
	ClassReturn
	// ClassProbe: a connect or disconnect of `tether probe`.
	ClassProbe
	ClassClientClose // disconnect: the device sent DISCONNECT
	ClassTokenExpiry // disconnect: the hub closed the session at token expiry (401003 + 404104)
	ClassNetwork     // disconnect: TCP closed or reset without DISCONNECT (404104)
	ClassKeepAlive   // disconnect: nothing received for 1.5 × keep-alive (404104)
	ClassTakeover    // disconnect: replaced by a new connection with the same id (400027)
	ClassAdmin       // disconnect: the device was disabled or deleted while connected
	ClassHub         // disconnect: hub shutdown, restart or server error
	ClassProtocol    // disconnect: protocol error (400000)
	ClassRefusedExpired
	ClassRefusedSignature
	ClassRefusedDisabled
	ClassRefusedNotFound
	ClassRefusedHub   // refused by the hub's own trouble (500001, 500008)
	ClassRefusedOther // any other refusal (malformed token, wrong hub, …)
	numClasses
)

var classNames = [numClasses]string{
	"connect", "renewal", "renewal-expiry", "return", "probe",
	"client-close", "token-expiry", "network", "keep-alive", "takeover", "admin", "hub", "protocol",
	"refused-expired", "refused-signature", "refused-disabled", "refused-not-found", "refused-hub", "refused-other",
}

func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// isConnect reports whether the class is one of a connected event.
func (c Class) isConnect() bool { return c <= ClassReturn }

// isRefusal reports whether the class is one of a refused attempt.
func (c Class) isRefusal() bool { return c >= ClassRefusedExpired }

// ProbePrefix starts the sdkVersion of `tether probe` connections
// (probe.ClientTypePrefix; repeated here so insight needs no probe import).
const ProbePrefix = "tether-probe/"

// isProbe reports whether sdk is `tether probe`'s.
func isProbe(sdk string) bool { return strings.HasPrefix(sdk, ProbePrefix) }

// disconnectClass classifies a disconnect by its reason (and result, for
// reasons this version does not know).
func disconnectClass(r presence.Reason, res presence.Result) Class {
	switch r {
	case presence.ReasonClient:
		return ClassClientClose
	case presence.ReasonTokenExpired:
		return ClassTokenExpiry
	case presence.ReasonNetwork:
		return ClassNetwork
	case presence.ReasonKeepAlive:
		return ClassKeepAlive
	case presence.ReasonTakeover:
		return ClassTakeover
	case presence.ReasonDisabled, presence.ReasonDeleted:
		return ClassAdmin
	case presence.ReasonServerShutdown, presence.ReasonHubRestart, presence.ReasonNodeLost, presence.ReasonServerError:
		return ClassHub
	case presence.ReasonProtocolError:
		return ClassProtocol
	}
	switch {
	case res.Type == "":
		return ClassClientClose
	case res.Type == presence.ResultTakeover.Type:
		return ClassTakeover
	case strings.HasPrefix(res.Type, "5"):
		return ClassHub
	}
	return ClassNetwork
}

// refusalClass classifies a refused attempt.
func refusalClass(r presence.Reason, f presence.AuthFailure, res presence.Result) Class {
	switch r {
	case presence.ReasonAuthFailed:
		switch f {
		case presence.AuthTokenExpired:
			return ClassRefusedExpired
		case presence.AuthBadSignature:
			return ClassRefusedSignature
		case presence.AuthDeviceDisabled:
			return ClassRefusedDisabled
		case presence.AuthDeviceNotFound:
			return ClassRefusedNotFound
		}
		return ClassRefusedOther
	case presence.ReasonServerError, presence.ReasonServerShutdown:
		return ClassRefusedHub
	}
	if strings.HasPrefix(res.Type, "5") {
		return ClassRefusedHub
	}
	return ClassRefusedOther
}

// troubleClasses are the disconnects and refusals that count against a
// device (the denominator of "explains most of the trouble").
func (c Class) trouble() bool {
	switch c {
	case ClassNetwork, ClassKeepAlive, ClassTakeover, ClassTokenExpiry, ClassProtocol, ClassClientClose,
		ClassRefusedExpired, ClassRefusedSignature, ClassRefusedDisabled, ClassRefusedNotFound, ClassRefusedOther,
		ClassHub, ClassRefusedHub, ClassAdmin:
		return true
	}
	return false
}
