package insight

import (
	"encoding/hex"
	"strconv"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// rec is one connection event as a device's history keeps it: 56 bytes,
// strings interned (see strtab), so a device's recent events cost a fixed
// amount whatever the event carried.
type rec struct {
	At      int64    // event time, unix milliseconds
	Session [16]byte // the session id (32 hex digits) decoded; zero for refusals
	Dur     uint32   // disconnects: the session's length, ms (saturating)
	Idle    uint32   // disconnects: ms since the device last sent something (0: unknown)
	Life    int32    // token expiry − At, seconds (flagLife says whether known)
	Src     uint32   // masked source address (strtab)
	SDK     uint32   // sdkVersion (strtab)
	Result  uint32   // the IoT Hub code as a number (404104), 0 for success
	KA      uint16   // keep-alive of the session, seconds
	Class   Class
	Reason  uint8 // index in reasonNames
	Flags   uint8
	Op      uint8 // opConnect, opDisconnect, opRefused
}

// rec operations.
const (
	opConnect = iota
	opDisconnect
	opRefused
)

// rec flags.
const (
	flagLife      = 1 << iota // Life is known (the event carried a token expiry)
	flagRenewMark             // presence marked the connect as a token renewal
	flagProbe                 // a probe was on either side (its own session, or it took the device's)
	flagFirst                 // the device's first connect in the history
)

var reasonNames = []presence.Reason{
	presence.ReasonNone, presence.ReasonClient, presence.ReasonNetwork, presence.ReasonKeepAlive,
	presence.ReasonTakeover, presence.ReasonTokenExpired, presence.ReasonDisabled, presence.ReasonDeleted,
	presence.ReasonServerShutdown, presence.ReasonHubRestart, presence.ReasonProtocolError,
	presence.ReasonAuthFailed, presence.ReasonConnectTimeout, presence.ReasonServerError,
	presence.ReasonNodeLost,
}

func reasonIndex(r presence.Reason) uint8 {
	for i, n := range reasonNames {
		if n == r {
			return uint8(i)
		}
	}
	return 0
}

func (r *rec) reason() presence.Reason { return reasonNames[r.Reason] }

func (r *rec) time() time.Time { return time.UnixMilli(r.At).UTC() }

func (r *rec) life() (time.Duration, bool) {
	return time.Duration(r.Life) * time.Second, r.Flags&flagLife != 0
}

// sessionID renders the session id back as presence wrote it.
func (r *rec) sessionID() string {
	if r.Session == ([16]byte{}) {
		return ""
	}
	return hex.EncodeToString(r.Session[:])
}

// resultCode parses a six-digit IoT Hub code ("" is 0).
func resultCode(s string) uint32 {
	if s == "" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 1 // not a code: still an error
	}
	return uint32(n)
}

// resultType renders a code as the log's ResultType.
func resultType(c uint32) string {
	if c == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(c), 10)
}

// resultDescriptions are the names of the codes the hub records.
var resultDescriptions = map[uint32]string{
	400027: "ConnectionForcefullyClosedOnNewConnection",
	404104: "DeviceConnectionClosedRemotely",
	401003: "IoTHubUnauthorized",
	400000: "GenericBadRequest",
	500001: "ServerError",
	500008: "GenericTimeout",
	409002: "LinkCreationConflict",
}

func decodeSession(id string) (s [16]byte) {
	if len(id) == 32 {
		_, _ = hex.Decode(s[:], []byte(id))
	}
	return s
}

func saturate32(ms int64) uint32 {
	switch {
	case ms < 0:
		return 0
	case ms > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(ms)
}

// lifeSeconds is expiry − at in whole seconds, clamped to int32.
func lifeSeconds(expiry time.Time, at time.Time) int32 {
	d := expiry.Sub(at) / time.Second
	switch {
	case d > 1<<31-1:
		return 1<<31 - 1
	case d < -(1 << 31):
		return -(1 << 31)
	}
	return int32(d)
}

// strtab interns the strings events repeat (masked addresses, SDK
// versions): a device's records hold 4-byte indexes.
type strtab struct {
	Strs []string
	idx  map[string]uint32
}

func (t *strtab) intern(s string) uint32 {
	if t.idx == nil {
		t.rebuild()
	}
	if i, ok := t.idx[s]; ok {
		return i
	}
	i := uint32(len(t.Strs))
	s = clone(s)
	t.Strs = append(t.Strs, s)
	t.idx[s] = i
	return i
}

func (t *strtab) str(i uint32) string {
	if int(i) < len(t.Strs) {
		return t.Strs[i]
	}
	return ""
}

func (t *strtab) rebuild() {
	t.idx = make(map[string]uint32, len(t.Strs))
	if len(t.Strs) == 0 {
		t.Strs = append(t.Strs, "") // index 0 is the empty string
	}
	for i, s := range t.Strs {
		t.idx[s] = uint32(i)
	}
}

// clone copies s so an interned string does not keep a decoded message's
// buffer alive.
func clone(s string) string { return string([]byte(s)) }
