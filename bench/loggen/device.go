package loggen

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

// sdkProfile is a device SDK: its MQTT DeviceClientType and whether the
// hub closes it at token expiry (.NET, Java) or it renews by reconnecting.
type sdkProfile struct {
	family   string
	version  string
	byExpiry bool
}

// sdks and their shares of the fleet.
var sdks = []struct {
	p     sdkProfile
	share float64
}{
	{sdkProfile{"node", "azure-iot-device/1.18.3 (node v20.11.0; Linux; x64)", false}, 0.30},
	{sdkProfile{"dotnet", ".NET/1.42.3 (.NET 8.0.4; Linux 5.15.0-1061-azure #70-Ubuntu SMP; X64; {8b0a2c3e-4d7f-4f4e-9c1a-2b3c4d5e6f70})", true}, 0.20},
	{sdkProfile{"python", "azure-iot-device-iothub-py/2.13.1 (Python 3.11.8; Linux 6.1.0; x86_64)", false}, 0.15},
	{sdkProfile{"c", "iothubclient/1.12.0 (native; Linux; armv7l)", false}, 0.30},
	{sdkProfile{"java", "com.microsoft.azure.sdk.iot.iot-device-client/2.4.1 (Java 17.0.10; Linux 5.10.0)", true}, 0.05},
}

func pickSDK(rng *rand.Rand) sdkProfile {
	x := rng.Float64()
	for _, s := range sdks {
		if x < s.share {
			return s.p
		}
		x -= s.share
	}
	return sdks[0].p
}

type deviceState int

const (
	stateNew      deviceState = iota // not registered yet: the next step creates it
	stateOffline                     // the next step connects (or is refused)
	stateOnline                      // the next step ends the session by d.end
	stateDisabled                    // the next step enables it again
)

// sessionEnd is how a session will end, chosen when it starts.
type sessionEnd int

const (
	endRenewal  sessionEnd = iota // token renewal, the SDK's way
	endNetwork                    // 404104: network loss or keep-alive
	endTakeover                   // 400027: a second client with the same id
	endConflict                   // 409002: link creation conflict
	endClient                     // client DISCONNECT, then offline a while
	endDisable                    // disabled in the registry (401003), enabled later
)

// Shares of session ends (the rest are renewals).
var endShares = []struct {
	end   sessionEnd
	share float64
}{
	{endNetwork, 0.10},
	{endTakeover, 0.03},
	{endConflict, 0.01},
	{endClient, 0.08},
	{endDisable, 0.003},
}

// Shares of refused connect attempts.
const (
	refuseAuthShare   = 0.03  // 401003: a bad or expired token
	refuseServerShare = 0.004 // 500001
)

// device is one simulated device.
type device struct {
	id        string
	sdk       sdkProfile
	protocol  string
	ip        string
	keepAlive uint16

	state       deviceState
	next        time.Time // when the next step happens
	counter     uint64    // sequence counter
	refusals    int
	end         sessionEnd
	connectedAt time.Time
	session     string
	tokenExpiry time.Time
	renewalOf   string // sequence of the disconnect a renewal connect follows
	quickNext   bool   // reconnect right away (takeover)
}

// step makes d's next records (into g.pending) and schedules its next step.
func (g *Generator) step(d *device) {
	t := d.next
	switch d.state {
	case stateNew:
		g.change(d, t, registry.OpCreated, registry.Enabled)
		d.state = stateOffline
		d.next = t.Add(g.randDur(time.Second, time.Minute))
	case stateDisabled:
		g.change(d, t, registry.OpUpdated, registry.Enabled)
		d.state = stateOffline
		d.next = t.Add(g.randDur(5*time.Second, 2*time.Minute))
	case stateOffline:
		g.connect(d, t)
	case stateOnline:
		g.disconnect(d, t)
	}
}

// connect tries to connect d at t: refused, or a new session whose end is
// chosen now.
func (g *Generator) connect(d *device, t time.Time) {
	x := g.rng.Float64()
	switch {
	case !d.quickNext && x < refuseAuthShare:
		g.event(d, t, presence.ConnectionEvent{
			Kind: presence.Refused, Reason: presence.ReasonAuthFailed, Result: presence.ResultUnauthorized,
			Detail: "SAS token expired at " + t.Add(-g.randDur(time.Minute, time.Hour)).Format(time.RFC3339),
		})
		d.next = t.Add(g.randDur(5*time.Second, time.Minute))
		return
	case !d.quickNext && x < refuseAuthShare+refuseServerShare:
		g.event(d, t, presence.ConnectionEvent{
			Kind: presence.Refused, Reason: presence.ReasonServerError, Result: presence.ResultServerError,
			Detail: "the registry did not answer in time",
		})
		d.next = t.Add(g.randDur(time.Second, 10*time.Second))
		return
	}
	d.quickNext = false
	d.counter++
	d.session = "s-" + strconv.FormatUint(g.rng.Uint64(), 36)
	d.connectedAt = t
	d.tokenExpiry = t.Add(g.session)
	e := presence.ConnectionEvent{Kind: presence.Connected}
	if d.renewalOf != "" {
		e.TokenRenewal, e.RenewalOf = true, d.renewalOf
		d.renewalOf = ""
	}
	g.event(d, t, e)
	d.state = stateOnline
	d.end = endRenewal
	x = g.rng.Float64()
	for _, s := range endShares {
		if x < s.share {
			d.end = s.end
			break
		}
		x -= s.share
	}
	switch d.end {
	case endRenewal:
		if d.sdk.byExpiry {
			d.next = d.tokenExpiry
		} else {
			d.next = t.Add(g.scaled(0.85, 0.95)) // renews before expiry
		}
	default:
		d.next = t.Add(g.scaled(0.02, 0.9))
	}
}

// disconnect ends d's session at t the way chosen at connect.
func (g *Generator) disconnect(d *device, t time.Time) {
	e := presence.ConnectionEvent{
		Kind: presence.Disconnected, ConnectedAt: d.connectedAt,
		DurationMs: t.Sub(d.connectedAt).Milliseconds(),
	}
	d.state = stateOffline
	switch d.end {
	case endRenewal:
		if d.sdk.byExpiry {
			e.Reason, e.Result = presence.ReasonTokenExpired, presence.ResultUnauthorized
			e.Detail = "SAS token expired at " + d.tokenExpiry.Format(time.RFC3339) + "; the hub closed the connection"
			d.next = t.Add(g.randDur(time.Second, 30*time.Second))
		} else {
			e.Reason = presence.ReasonClient
			d.next = t.Add(g.randDur(200*time.Millisecond, 2*time.Second))
		}
		d.renewalOf = g.event(d, t, e)
		return
	case endNetwork:
		if g.rng.IntN(2) == 0 {
			e.Reason = presence.ReasonNetwork
			e.Detail = "connection reset by peer"
		} else {
			e.Reason = presence.ReasonKeepAlive
			e.Detail = "no packet for " + strconv.Itoa(int(d.keepAlive)*3/2) + "s (keep-alive " + strconv.Itoa(int(d.keepAlive)) + "s)"
		}
		e.Result = presence.ResultClosedRemotely
		d.next = t.Add(g.randDur(time.Second, 2*time.Minute))
	case endTakeover:
		e.Reason, e.Result = presence.ReasonTakeover, presence.ResultTakeover
		e.Detail = "a new connection for this device id was established"
		d.quickNext = true
		d.next = t.Add(g.randDur(time.Millisecond, 50*time.Millisecond))
	case endConflict:
		e.Reason, e.Result = presence.ReasonTakeover, presence.ResultLinkCreationConflict
		e.Detail = "the device opened a link while the hub still held its previous one"
		d.next = t.Add(g.randDur(time.Second, 5*time.Second))
	case endClient:
		e.Reason = presence.ReasonClient
		d.next = t.Add(g.scaled(0.2, 3))
	case endDisable:
		g.change(d, t, registry.OpUpdated, registry.Disabled)
		t = t.Add(5 * time.Millisecond)
		e.Reason, e.Result = presence.ReasonDisabled, presence.ResultUnauthorized
		e.Detail = "the device was disabled in the registry"
		d.state = stateDisabled
		d.next = t.Add(g.scaled(1, 5))
	}
	g.event(d, t, e)
}

// event completes e for d at t, appends its records and returns its
// sequence number ("" for a refusal).
func (g *Generator) event(d *device, t time.Time, e presence.ConnectionEvent) string {
	e.Time, e.Hub, e.DeviceID = t, g.o.Hub, d.id
	e.Protocol, e.ProtocolVersion, e.MaskedIP = d.protocol, 4, d.ip
	e.SDKVersion, e.AuthType, e.KeepAliveSeconds = d.sdk.version, "sas", d.keepAlive
	if e.Kind == presence.Refused {
		d.refusals++
		e.ID = "refused/" + d.id + "/" + strconv.Itoa(d.refusals)
	} else {
		if e.Kind == presence.Disconnected {
			d.counter++
		}
		e.Sequence = presence.FormatSequence(g.epoch, 1, d.counter)
		e.ID = d.id + "/" + e.Sequence
		e.SessionID, e.TokenExpiry = d.session, d.tokenExpiry
	}
	if g.countOnly {
		g.pending = append(g.pending, connlog.Record{TimeGenerated: t})
		if e.Reason == presence.ReasonTokenExpired {
			g.pending = append(g.pending, connlog.Record{TimeGenerated: t.Add(connlog.TokenExpiryGap)})
		}
		return e.Sequence
	}
	recs, err := connlog.FromConnectionEvent(g.o.Resource, e)
	if err != nil {
		panic("loggen: " + err.Error()) // the kinds above are all known
	}
	g.pending = append(g.pending, recs...)
	return e.Sequence
}

// change appends the DeviceIdentityOperations record of a registry write.
func (g *Generator) change(d *device, t time.Time, op registry.Op, status registry.Status) {
	d.counter++ // ids only need to be unique per device
	if g.countOnly {
		g.pending = append(g.pending, connlog.Record{TimeGenerated: t})
		return
	}
	c := registry.Change{
		ID: "registry/" + d.id + "/" + strconv.FormatUint(d.counter, 10), Time: t, Hub: g.o.Hub,
		Op: op, DeviceID: d.id, Caller: "iothubowner",
		Device: registry.Device{DeviceID: d.id, Status: status, GenerationID: "638" + strconv.Itoa(len(d.id)*7919), ETag: strconv.FormatUint(d.counter, 10)},
	}
	g.pending = append(g.pending, connlog.FromChange(g.o.Resource, c))
}

// deviceQueue orders devices by their next step: a min-heap of
// entries holding the time, so sifting compares neighbouring ints instead
// of two devices' fields scattered over the heap (container/heap's Less
// through pointers was a third of the generator's CPU at 100,000
// devices). It sifts exactly as container/heap does, so the order of
// devices due at the same time, and the output, are as before.
type deviceQueue []queued

type queued struct {
	at int64 // d.next, Unix ns
	d  *device
}

// init makes q a heap (container/heap.Init).
func (q deviceQueue) init() {
	for i := len(q)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}

// fix0 restores the heap after the first device's next step changed
// (container/heap.Fix(q, 0)).
func (q deviceQueue) fix0() {
	q[0].at = q[0].d.next.UnixNano()
	q.down(0)
}

func (q deviceQueue) down(i int) {
	n := len(q)
	for {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 {
			return
		}
		j := j1
		if j2 := j1 + 1; j2 < n && q[j2].at < q[j1].at {
			j = j2
		}
		if q[j].at >= q[i].at {
			return
		}
		q[i], q[j] = q[j], q[i]
		i = j
	}
}
