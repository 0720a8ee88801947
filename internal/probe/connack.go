package probe

import (
	"fmt"
	"time"
)

// connackText names the MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2-3].
var connackText = map[byte]string{
	0: "accepted",
	1: "unacceptable protocol version",
	2: "identifier rejected",
	3: "server unavailable",
	4: "bad user name or password",
	5: "not authorized",
}

// reason5Text names the MQTT 5 CONNACK reason codes a hub uses.
var reason5Text = map[byte]string{
	0x00: "success",
	0x80: "unspecified error",
	0x81: "malformed packet",
	0x82: "protocol error",
	0x84: "unsupported protocol version",
	0x85: "client identifier not valid",
	0x86: "bad user name or password",
	0x87: "not authorized",
	0x88: "server unavailable",
	0x89: "server busy",
	0x8A: "banned",
	0x97: "quota exceeded",
	0x9F: "connection rate exceeded",
}

// refusal is what the probe knows about a refused CONNECT.
type refusal struct {
	rc          byte         // 3.1.1 return code
	v5          *MQTT5Result // the MQTT 5 follow-up, when one was made
	moduleID    string
	deviceID    string
	fixedToken  bool      // the connection string's own SharedAccessSignature
	tokenExpiry time.Time // by the device's clock
	now         time.Time // the device's clock
	expiredAtHb bool      // the clock step says the hub saw the token expired
	clockKnown  bool
}

// explain turns a refusal into IoT Hub's words: what the hub meant and
// what to do.
func (f refusal) explain() (summary, hint string) {
	code := fmt.Sprintf("CONNACK %d (%s)", f.rc, connackText[f.rc])
	logHint := fmt.Sprintf("the hub's Connections log names the exact reason (Tether: tether logs --device %s; IoT Hub: the Connections diagnostic log)", f.deviceID)
	if f.v5 != nil && f.v5.ReasonCode != nil {
		code5 := byte(*f.v5.ReasonCode)
		suffix := ""
		if f.v5.ReasonString != "" {
			suffix = " — the hub says: " + f.v5.ReasonString
		}
		switch code5 {
		case 0x86:
			return f.badToken(code + "; MQTT 5 says bad user name or password" + suffix)
		case 0x87:
			what := fmt.Sprintf("the hub does not let device %q connect: it has no such device, or the device is disabled", f.deviceID)
			if f.moduleID != "" {
				what = fmt.Sprintf("the hub does not let module %q of device %q connect: no such device or module, a disabled device, or a hub without module identities", f.moduleID, f.deviceID)
			}
			return code + "; MQTT 5 says not authorized: " + what + suffix,
				fmt.Sprintf("check the device in the hub's registry (Tether: tether device show %s; Azure: the portal's device page): create it, or set its status to enabled; then %s", f.deviceID, logHint)
		case 0x85:
			return code + "; MQTT 5 says the client identifier is not valid" + suffix, "the client id must equal DeviceId (DeviceId/ModuleId for a module)"
		case 0x88, 0x89:
			return code + "; MQTT 5 says " + reason5Text[code5] + suffix, "the hub is overloaded or its storage is down: retry later and check the hub's health"
		}
	}
	switch f.rc {
	case 1:
		return code + ": the server does not take MQTT 3.1.1", "is this an IoT hub? IoT Hub and Tether speak MQTT 3.1.1 and 5"
	case 2:
		return code + ": the hub refused the client id", "the client id must equal DeviceId (DeviceId/ModuleId for a module)"
	case 3:
		return code + ": the hub could not take the connection now", "the hub is overloaded or its storage is down: retry later and check the hub's health"
	case 4, 5:
		if f.expiredAtHb || f.fixedToken && !f.now.Before(f.tokenExpiry) {
			return f.badToken(code)
		}
		s := code + ": IoT Hub's answer to a wrong key, an expired token, an unknown or a disabled device alike"
		if f.clockKnown && !f.expiredAtHb {
			s += "; the clock (step 4) rules out an expired token"
		}
		return s, "compare the key with the device's in the registry, and check that the device exists and is enabled; " + logHint
	}
	return code, logHint
}

// badToken explains a token the hub refused: expired by its clock, an
// expired fixed token, or a signature that does not match the key.
func (f refusal) badToken(code string) (string, string) {
	switch {
	case f.fixedToken && !f.now.Before(f.tokenExpiry):
		return code + fmt.Sprintf(": the connection string's SharedAccessSignature expired at %s", f.tokenExpiry.UTC().Format(time.RFC3339)),
			"a fixed SharedAccessSignature is not renewed: generate a new one (tether device token), or give the device its key (SharedAccessKey) so it signs its own"
	case f.expiredAtHb:
		return code + ": the token is already expired by the hub's clock: this machine's clock is behind (step 4)",
			"sync the device's clock (NTP); SAS tokens are signed with an expiry from the device's clock"
	case f.clockKnown:
		return code + ": the token's signature does not match: the key in the connection string is not this device's (a regenerated key, or another device's or hub's)",
			fmt.Sprintf("copy the device's current key (Tether: tether device connection-string %s; Azure: the portal's device page); also check that HostName is the hub's own name", f.deviceID)
	}
	return code + ": the token was refused: a wrong key, or an expired token if this clock is behind (step 4 could not tell)",
		fmt.Sprintf("copy the device's current key (Tether: tether device connection-string %s) and sync the clock (NTP)", f.deviceID)
}
