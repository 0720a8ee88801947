package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/mqttclient"
)

// MQTTResult is what steps 5 and 6 found.
type MQTTResult struct {
	// Transport: "mqtt-tls" or "mqtt-ws".
	Transport string `json:"transport"`
	URL       string `json:"url"`
	Proxy     string `json:"proxy,omitempty"`
	ClientID  string `json:"clientId"`
	Username  string `json:"username"`
	// TokenExpiry is the SAS token's se, by the device's clock.
	TokenExpiry      time.Time `json:"tokenExpiry"`
	KeepAliveSeconds int       `json:"keepAliveSeconds"`
	// ConnackMillis: CONNECT written → CONNACK read.
	ConnackMillis float64 `json:"connackMs,omitempty"`
	// ReturnCode is the MQTT 3.1.1 CONNACK code (absent when no CONNACK
	// came).
	ReturnCode     *int   `json:"returnCode,omitempty"`
	ReturnCodeText string `json:"returnCodeText,omitempty"`
	SessionPresent bool   `json:"sessionPresent"`
	// MQTT5 is the follow-up after a 3.1.1 refusal (see connect5).
	MQTT5     *MQTT5Result     `json:"mqtt5,omitempty"`
	Subscribe *SubscribeResult `json:"subscribe,omitempty"`
	Publish   *PublishResult   `json:"publish,omitempty"`
	// Disconnect is "clean" when DISCONNECT went out and the hub closed.
	Disconnect string `json:"disconnect,omitempty"`
	// C2DReceived counts cloud-to-device messages the hub sent while the
	// probe was connected; none was acknowledged, so the hub keeps them.
	C2DReceived int    `json:"c2dReceived,omitempty"`
	Error       string `json:"error,omitempty"`
}

// MQTT5Result is the hub's answer to the MQTT 5 CONNECT.
type MQTT5Result struct {
	ReasonCode   *int   `json:"reasonCode,omitempty"`
	Reason       string `json:"reason,omitempty"`
	ReasonString string `json:"reasonString,omitempty"`
	Error        string `json:"error,omitempty"`
}

// SubscribeResult is the SUBSCRIBE's outcome.
type SubscribeResult struct {
	Filter string `json:"filter"`
	// ReturnCode is the SUBACK's: the granted QoS, or 128 (refused).
	ReturnCode int     `json:"returnCode"`
	Millis     float64 `json:"ms"`
}

// PublishResult is the test telemetry message's outcome.
type PublishResult struct {
	Topic  string  `json:"topic"`
	Acked  bool    `json:"acked"`
	Millis float64 `json:"ms"`
}

// Probe traffic: a subscription that changes nothing for the device (the
// SDKs' twin-response filter: nothing arrives on it unless asked for),
// and a marked telemetry message.
const (
	probeFilter    = "$iothub/twin/res/#"
	probeProperty  = "tether-probe=1"
	probeKeepAlive = 60
)

// dialFunc opens the transport a session runs on.
type dialFunc func(ctx context.Context) (net.Conn, error)

// mqttTLSStep is step 5: MQTT 3.1.1 over TLS on the MQTT port.
func (r *run) mqttTLSStep(ctx context.Context) Step {
	s := r.newStep(StepMQTT, r.mqttTarget())
	if !r.needs(&s, StepTLS, r.mqttTarget()) {
		return s
	}
	res := &MQTTResult{Transport: "mqtt-tls", URL: "mqtts://" + r.mqttTarget()}
	r.mqttOK = r.exchange(ctx, &s, res, r.dialMQTTTLS)
	return s
}

func (r *run) dialMQTTTLS(ctx context.Context) (net.Conn, error) {
	nc, err := r.dial(ctx, r.t.mqttPort)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(nc, r.tlsConfig())
	hctx, cancel := context.WithTimeout(ctx, r.t.timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("TLS: %w", err)
	}
	return tc, nil
}

// connectPacket is the CONNECT the SDKs send: clean session 0, so the
// device's session stays as it was.
func (r *run) connectPacket(password string, keepAlive int) mqttclient.Connect {
	return mqttclient.Connect{ClientID: r.t.clientID, Username: r.t.userName, Password: password, KeepAlive: uint16(keepAlive)}
}

// exchange runs CONNECT, SUBSCRIBE, the optional PUBLISH and DISCONNECT
// on a fresh connection, fills s and res, and reports whether the hub
// accepted the CONNECT.
func (r *run) exchange(ctx context.Context, s *Step, res *MQTTResult, dial dialFunc) bool {
	s.MQTT = res
	res.ClientID, res.Username, res.KeepAliveSeconds = r.t.clientID, r.t.userName, probeKeepAlive
	tok, exp, err := r.t.token(tokenTTL)
	if err != nil {
		s.Status, s.Summary = Fail, errText(err)
		return false
	}
	res.TokenExpiry = exp.UTC()
	fixed := r.t.cs.SharedAccessKey == ""
	if fixed && !r.t.now().Before(exp) {
		s.Notes = append(s.Notes, "the connection string's SharedAccessSignature is expired by this clock")
	}
	nc, err := dial(ctx)
	if err != nil {
		res.Error = errText(err)
		s.Status, s.Summary = Fail, "could not open the connection: "+res.Error
		s.Hint = "steps 2 and 3 passed a moment ago: the network is unstable, or the server accepts only some connections"
		var he *wsHTTPError
		if errors.As(err, &he) {
			s.Summary = he.Error()
			s.Hint = "check --https-port: it must be the hub's HTTPS port (IoT Hub: 443, tether serve --dev: 8443); a proxy must let WebSocket upgrades through"
		}
		return false
	}
	sess := newSession(nc, r.t.timeout)
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c := r.connectPacket(tok, probeKeepAlive)
	start := time.Now()
	present, err := sess.connect(c)
	res.ConnackMillis = ms(time.Since(start))
	var ce mqttclient.ConnackError
	switch {
	case errors.As(err, &ce):
		nc.Close()
		rc := int(ce)
		res.ReturnCode, res.ReturnCodeText = &rc, connackText[byte(ce)]
		f := refusal{
			rc: byte(ce), deviceID: r.t.cs.DeviceID, moduleID: r.t.cs.ModuleID,
			fixedToken: fixed, tokenExpiry: exp, now: r.t.now(),
			expiredAtHb: r.tokenExpiredAtHub(exp), clockKnown: r.clock != nil && r.clock.Source == "https-date",
		}
		if ce == 4 || ce == 5 {
			res.MQTT5 = r.askWithMQTT5(ctx, dial, c)
			f.v5 = res.MQTT5
		}
		s.Status = Fail
		s.Summary, s.Hint = f.explain()
		return false
	case err != nil:
		nc.Close()
		res.Error = errText(err)
		s.Status = Fail
		switch classify(err) {
		case TimedOut:
			s.Summary = fmt.Sprintf("no CONNACK within %s: the connection is open but the hub does not answer the CONNECT", r.t.timeout)
			s.Hint = "the hub is overloaded or stuck, or a middlebox holds the flow: check the hub's health"
		case Closed, Reset:
			s.Summary = "the hub closed the connection without a CONNACK (" + res.Error + ")"
			s.Hint = "a hub closes without CONNACK only what is not an MQTT CONNECT it accepts (or is shutting down); a middlebox may have cut the flow"
		default:
			s.Summary = "CONNECT failed: " + res.Error
		}
		return false
	}
	rc := 0
	res.ReturnCode, res.ReturnCodeText, res.SessionPresent = &rc, connackText[0], present
	var parts []string
	parts = append(parts, fmt.Sprintf("CONNACK 0 in %s", roundDur(time.Duration(res.ConnackMillis*float64(time.Millisecond)))))
	s.Status = Pass

	start = time.Now()
	code, err := sess.subscribe(probeFilter, 0)
	res.Subscribe = &SubscribeResult{Filter: probeFilter, ReturnCode: int(code), Millis: ms(time.Since(start))}
	switch {
	case err != nil:
		res.Error = errText(err)
		s.Status = Fail
		s.Summary = strings.Join(parts, "; ") + "; no SUBACK: " + res.Error
		s.Hint = "the hub accepted the connection but did not answer a SUBSCRIBE: check the hub's log"
		sess.nc.Close()
		return true
	case code == 0x80:
		s.Status = Warn
		parts = append(parts, "SUBSCRIBE "+probeFilter+" refused (0x80)")
		s.Hint = "the hub refused the twin-response subscription the SDKs make: twin operations will fail"
	default:
		parts = append(parts, fmt.Sprintf("SUBACK QoS %d", code))
	}
	if r.cfg.Publish {
		topic := r.t.telemetryTopic() + probeProperty
		payload := fmt.Sprintf(`{"tetherProbe":true,"transport":%q,"sentAt":%q}`, res.Transport, r.t.now().UTC().Format(time.RFC3339Nano))
		start = time.Now()
		err := sess.publish(topic, []byte(payload))
		res.Publish = &PublishResult{Topic: topic, Acked: err == nil, Millis: ms(time.Since(start))}
		if err != nil {
			res.Error = errText(err)
			s.Status = Fail
			s.Summary = strings.Join(parts, "; ") + "; telemetry not acknowledged: " + res.Error
			s.Hint = "the hub took the connection but not the message: it may refuse the topic (then it closes the connection) or its storage is slow"
			sess.nc.Close()
			return true
		}
		parts = append(parts, fmt.Sprintf("telemetry PUBACK in %s", roundDur(time.Since(start))))
	}
	if err := sess.disconnect(); err != nil {
		res.Disconnect = "failed: " + errText(err)
	} else {
		res.Disconnect = "clean"
		parts = append(parts, "DISCONNECT")
	}
	res.C2DReceived = sess.c2d
	if sess.c2d > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("the hub sent %d cloud-to-device message(s) for the device; not acknowledged, so the hub delivers them again to the device", sess.c2d))
	}
	if present {
		s.Notes = append(s.Notes, "the hub resumed the device's persistent session (its subscriptions and queued messages stay for the device)")
	}
	s.Summary = strings.Join(parts, "; ")
	return true
}

// askWithMQTT5 repeats a refused CONNECT in MQTT 5 on a new connection.
func (r *run) askWithMQTT5(ctx context.Context, dial dialFunc, c mqttclient.Connect) *MQTT5Result {
	res := &MQTT5Result{}
	nc, err := dial(ctx)
	if err != nil {
		res.Error = errText(err)
		return res
	}
	defer nc.Close()
	code, reason, err := connect5(nc, c, r.t.timeout)
	if err != nil {
		res.Error = "no MQTT 5 answer (IoT Hub speaks MQTT 5 only in preview): " + errText(err)
		return res
	}
	n := int(code)
	res.ReasonCode, res.Reason, res.ReasonString = &n, reason5Text[code], reason
	if code == 0 { // accepted after all: leave cleanly
		_, _ = nc.Write([]byte{mqttclient.TypeDisconnect << 4, 0})
	}
	return res
}
