package insight_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

// A history is built by driving presence's own Tracker with a fake clock,
// so the events (sequence numbers, renewal marks, idle times, takeovers)
// are exactly what the hub journals; each is applied to the engine as the
// journal consumer would.

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

type fleet struct {
	t       *testing.T
	now     time.Time
	tracker *presence.Tracker
	engine  *insight.Engine
	seq     uint64
	regSeq  uint64
	events  []presence.ConnectionEvent
	emitted []insight.Record
}

func newFleet(t *testing.T, o insight.Options) *fleet {
	f := &fleet{t: t, now: t0}
	o.Hub = "test-hub.example"
	o.Emit = func(r insight.Record) { f.emitted = append(f.emitted, r) }
	f.engine = insight.NewEngine(o)
	f.tracker = presence.NewTracker(presence.Options{
		Hub: "test-hub.example", Epoch: presence.Filetime(t0), Now: func() time.Time { return f.now },
		Sink: func(ev presence.ConnectionEvent) {
			f.seq++
			f.events = append(f.events, ev)
			f.engine.Apply(&ev, f.seq)
		},
	})
	return f
}

// at moves the clock to t0+d (never back).
func (f *fleet) at(d time.Duration) {
	if t := t0.Add(d); t.After(f.now) {
		f.now = t
	}
}

func (f *fleet) after(d time.Duration) { f.now = f.now.Add(d) }

// client is one program connecting as a device.
type client struct {
	f       *fleet
	id      string
	src     string
	sdk     string
	ka      uint16
	ttl     time.Duration
	sess    *presence.Session
	n       int
	expired time.Duration // >0: tokens arrive expired by this much (clock behind)
}

func (f *fleet) client(id, src, sdk string, ttl time.Duration, ka uint16) *client {
	return &client{f: f, id: id, src: src, sdk: sdk, ttl: ttl, ka: ka}
}

func (c *client) connect() {
	c.n++
	c.sess = &presence.Session{
		ID: fmt.Sprintf("%016x%016x", uint64(len(c.id))<<40|uint64(c.n), uint64(c.f.now.UnixNano())), DeviceID: c.id,
		Protocol: "MQTT", ProtocolVersion: 4, MaskedIP: c.src, SDKVersion: c.sdk, AuthType: "sas",
		TokenExpiry: c.f.now.Add(c.ttl).Truncate(time.Second), KeepAliveSeconds: c.ka,
	}
	c.f.tracker.Connect(c.sess)
}

func (c *client) end(reason presence.Reason, res presence.Result) {
	c.f.tracker.Disconnect(c.sess, reason, res, "")
}

func (c *client) closeClean()  { c.end(presence.ReasonClient, presence.ResultOK) }
func (c *client) reset()       { c.end(presence.ReasonNetwork, presence.ResultClosedRemotely) }
func (c *client) keepAlive()   { c.end(presence.ReasonKeepAlive, presence.ResultClosedRemotely) }
func (c *client) tokenExpiry() { c.end(presence.ReasonTokenExpired, presence.ResultClosedRemotely) }

func (c *client) refuse(f presence.AuthFailure, detail string) {
	c.f.tracker.Refuse(presence.ConnectionEvent{
		DeviceID: c.id, SDKVersion: c.sdk, Protocol: "MQTT", ProtocolVersion: 4, MaskedIP: c.src,
		Reason: presence.ReasonAuthFailed, Result: presence.ResultUnauthorized, AuthFailure: f, Detail: detail, KeepAliveSeconds: c.ka,
	})
}

// refuseExpired refuses a token that expired `by` before now.
func (c *client) refuseExpired(by time.Duration) {
	exp := c.f.now.Add(-by).Truncate(time.Second)
	c.refuse(presence.AuthTokenExpired, "SAS token expired: expired at "+exp.Format(time.RFC3339))
}

func (f *fleet) change(id string, op registry.Op, status registry.Status, keys [2]string) {
	f.regSeq++
	fp := registry.Fingerprints(registry.SymmetricKey{PrimaryKey: keys[0], SecondaryKey: keys[1]})
	f.engine.ApplyChange(&registry.Change{
		ID: fmt.Sprintf("chg-%d", f.regSeq), Op: op, Time: f.now, Hub: "test-hub.example", DeviceID: id,
		Device: registry.Device{DeviceID: id, Status: status}, Caller: "iothubowner", Keys: &fp,
	}, f.regSeq)
}

const (
	nodeSDK   = "azure-iot-device/1.18.4 (node v20.11.0; Debian 12; x64)"
	dotnetSDK = ".NET/1.42.0 (.NET 8.0.1; Linux; X64)"
)

// The histories, one per cause (and two healthy ones). Each returns the
// device diagnosed.

func healthyNode(f *fleet) string {
	c := f.client("healthy-node", "10.1.0.XXX", nodeSDK, time.Hour, 180)
	f.change(c.id, registry.OpCreated, registry.Enabled, [2]string{"k1", "k2"})
	c.connect()
	for range 8 {
		f.after(45 * time.Minute)
		c.closeClean()
		f.after(150 * time.Millisecond)
		c.connect()
	}
	f.after(10 * time.Minute)
	return c.id
}

func renewalDotnet(f *fleet) string {
	c := f.client("renewal-dotnet", "10.1.1.XXX", dotnetSDK, time.Hour, 300)
	c.connect()
	for range 6 {
		f.now = c.sess.TokenExpiry
		c.tokenExpiry()
		f.after(400 * time.Millisecond)
		c.connect()
	}
	f.after(5 * time.Minute)
	return c.id
}

func duplicate(f *fleet) string {
	a := f.client("dup-1", "10.0.1.XXX", nodeSDK, time.Hour, 180)
	b := f.client("dup-1", "10.0.7.XXX", nodeSDK, time.Hour, 180)
	r := rand.New(rand.NewPCG(1, 2))
	a.connect()
	f.after(20 * time.Minute)
	for i := range 40 {
		f.after(time.Duration(500+r.IntN(9000)) * time.Millisecond)
		if i%2 == 0 {
			b.connect() // takes over a
		} else {
			a.connect()
		}
	}
	f.after(time.Minute)
	return a.id
}

func clockSkew(f *fleet) string {
	c := f.client("skewed-1", "10.2.0.XXX", nodeSDK, time.Hour, 180)
	c.connect()
	f.after(45 * time.Minute)
	c.closeClean()
	// The device's clock jumped two hours back: every new token (1 h)
	// has expired an hour before it arrives. Node retries 401003.
	for range 25 {
		f.after(time.Duration(5+f.now.Second()%5) * time.Second)
		c.refuseExpired(time.Hour)
	}
	return c.id
}

func shortTokens(f *fleet) string {
	c := f.client("short-1", "10.2.1.XXX", nodeSDK, 60*time.Second, 60)
	c.connect()
	for range 30 {
		f.after(45 * time.Second)
		c.closeClean()
		f.after(120 * time.Millisecond)
		c.connect()
	}
	return c.id
}

func rotatedKey(f *fleet) string {
	c := f.client("rotated-1", "10.3.0.XXX", nodeSDK, time.Hour, 180)
	f.change(c.id, registry.OpCreated, registry.Enabled, [2]string{"old-primary", "old-secondary"})
	c.connect()
	f.after(30 * time.Minute)
	f.change(c.id, registry.OpUpdated, registry.Enabled, [2]string{"new-primary", "old-secondary"})
	f.after(15 * time.Minute)
	c.closeClean() // the renewal: its new token is signed with the old key
	for range 20 {
		f.after(10 * time.Second)
		c.refuse(presence.AuthBadSignature, "the token was not signed with this key")
	}
	return c.id
}

func disabled(f *fleet) string {
	c := f.client("disabled-1", "10.4.0.XXX", nodeSDK, time.Hour, 180)
	f.change(c.id, registry.OpCreated, registry.Enabled, [2]string{"k1", "k2"})
	c.connect()
	f.after(20 * time.Minute)
	f.change(c.id, registry.OpUpdated, registry.Disabled, [2]string{"k1", "k2"})
	c.end(presence.ReasonDisabled, presence.ResultUnauthorized)
	for range 30 {
		f.after(12 * time.Second)
		c.refuse(presence.AuthDeviceDisabled, "device 'disabled-1' is disabled")
	}
	return c.id
}

func idleNAT(f *fleet) string {
	c := f.client("nat-1", "10.5.0.XXX", nodeSDK, time.Hour, 120)
	r := rand.New(rand.NewPCG(3, 4))
	for range 12 {
		c.connect()
		f.after(30*time.Second + time.Duration(r.IntN(400))*time.Millisecond)
		c.reset()
		f.after(time.Duration(100+r.IntN(200)) * time.Millisecond)
	}
	c.connect()
	f.after(10 * time.Second)
	return c.id
}

func unstable(f *fleet) string {
	c := f.client("wobbly-1", "10.6.0.XXX", nodeSDK, time.Hour, 60)
	r := rand.New(rand.NewPCG(5, 6))
	c.connect()
	for i := range 14 {
		f.after(time.Duration(5+r.IntN(600)) * time.Second)
		if i%3 == 2 {
			c.keepAlive()
		} else {
			c.reset()
		}
		f.after(time.Duration(200+r.IntN(3000)) * time.Millisecond)
		c.connect()
	}
	f.after(time.Minute)
	return c.id
}

func hubRestarts(f *fleet) string {
	c := f.client("victim-1", "10.7.0.XXX", nodeSDK, time.Hour, 180)
	c.connect()
	for i := range 4 {
		f.after(20 * time.Minute)
		if i%2 == 0 {
			c.end(presence.ReasonServerShutdown, presence.ResultOK)
		} else {
			c.end(presence.ReasonHubRestart, presence.ResultServerError)
		}
		f.after(3 * time.Second)
		c.connect()
	}
	f.after(time.Minute)
	return c.id
}

func crashLoop(f *fleet) string {
	c := f.client("flappy-1", "10.8.0.XXX", nodeSDK, time.Hour, 180)
	r := rand.New(rand.NewPCG(7, 8))
	c.connect()
	for range 30 {
		f.after(time.Duration(20+r.IntN(50)) * time.Second)
		c.closeClean()
		f.after(time.Duration(1+r.IntN(4)) * time.Second)
		c.connect()
	}
	return c.id
}

func probed(f *fleet) string {
	dev := f.client("probed-1", "10.9.0.XXX", nodeSDK, time.Hour, 180)
	probe := f.client("probed-1", "192.168.7.XXX", "tether-probe/0.1 (linux/amd64)", 10*time.Minute, 30)
	dev.connect()
	f.after(30 * time.Minute)
	probe.connect() // replaces the device's session
	f.after(2 * time.Second)
	probe.closeClean()
	f.after(900 * time.Millisecond)
	dev.connect()
	f.after(10 * time.Minute)
	return dev.id
}
