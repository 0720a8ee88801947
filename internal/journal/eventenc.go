package journal

import (
	"strconv"
	"time"

	"github.com/tether-hub/tether/internal/jsonenc"
	"github.com/tether-hub/tether/internal/presence"
)

// appendConnectionEvent appends ev's JSON, byte for byte what
// encoding/json makes of it (keys in field order, the same omitempty and
// omitzero rules, the same string escaping and time format), without
// reflection: two events per reconnect pass through here at thousands a
// second, and json.Marshal cost ~3 % of the hub's CPU at 5,000 events/s
// (issue 21). TestAppendConnectionEventMatchesMarshal and
// FuzzAppendConnectionEvent keep the two in step; TestEncoderCoversFields
// fails when ConnectionEvent gains a field this does not write.
func appendConnectionEvent(b []byte, ev *presence.ConnectionEvent) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, ev.ID)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(ev.Kind))
	b = append(b, `,"time":`...)
	var err error
	if b, err = appendJSONTime(b, ev.Time); err != nil {
		return nil, err
	}
	b = append(b, `,"hub":`...)
	b = appendJSONString(b, ev.Hub)
	b = append(b, `,"deviceId":`...)
	b = appendJSONString(b, ev.DeviceID)
	b = appendOptString(b, `,"moduleId":`, ev.ModuleID)
	b = appendOptString(b, `,"sequenceNumber":`, ev.Sequence)
	b = appendOptString(b, `,"reason":`, string(ev.Reason))
	b = append(b, `,"result":{"Type":`...)
	b = appendJSONString(b, ev.Result.Type)
	b = append(b, `,"Description":`...)
	b = appendJSONString(b, ev.Result.Description)
	b = append(b, '}')
	b = appendOptString(b, `,"authFailure":`, string(ev.AuthFailure))
	b = appendOptString(b, `,"detail":`, ev.Detail)
	b = appendOptString(b, `,"protocol":`, ev.Protocol)
	b = appendOptInt(b, `,"protocolVersion":`, int64(ev.ProtocolVersion))
	b = appendOptString(b, `,"maskedIpAddress":`, ev.MaskedIP)
	b = appendOptString(b, `,"sdkVersion":`, ev.SDKVersion)
	b = appendOptString(b, `,"authType":`, ev.AuthType)
	b = appendOptString(b, `,"sessionId":`, ev.SessionID)
	if !ev.ConnectedAt.IsZero() {
		b = append(b, `,"connectedAt":`...)
		if b, err = appendJSONTime(b, ev.ConnectedAt); err != nil {
			return nil, err
		}
	}
	b = appendOptInt(b, `,"durationMs":`, ev.DurationMs)
	b = appendOptInt(b, `,"idleMs":`, ev.IdleMs)
	if !ev.TokenExpiry.IsZero() {
		b = append(b, `,"tokenExpiry":`...)
		if b, err = appendJSONTime(b, ev.TokenExpiry); err != nil {
			return nil, err
		}
	}
	if ev.CleanSession {
		b = append(b, `,"cleanSession":true`...)
	}
	b = appendOptInt(b, `,"keepAlive":`, int64(ev.KeepAliveSeconds))
	if ev.TokenRenewal {
		b = append(b, `,"tokenRenewal":true`...)
	}
	b = appendOptString(b, `,"renewalOf":`, ev.RenewalOf)
	b = appendOptInt(b, `,"count":`, int64(ev.Count))
	return append(b, '}'), nil
}

func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

func appendOptInt(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), n, 10)
}

func appendJSONString(b []byte, s string) []byte { return jsonenc.String(b, s) }

func appendJSONTime(b []byte, t time.Time) ([]byte, error) { return jsonenc.Time(b, t) }
