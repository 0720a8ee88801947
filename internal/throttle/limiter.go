package throttle

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Limits configure a Limiter. A zero rate, size or quota turns that limit
// off.
type Limits struct {
	// ConnectRate is the hub-wide rate of new connections a second (IoT
	// Hub: 100/s per S1 unit; here sized to what the machine handshakes,
	// see DefaultConnectRates); ConnectBurst how many may come at once.
	// A connection with a TLS handshake of its own or done by the HTTPS
	// server (WebSockets) takes a whole turn under it.
	ConnectRate  float64
	ConnectBurst int
	// PlainConnectRate is the hub-wide rate of plain-TCP connections,
	// which have no handshake and cost the hub less: both kinds share one
	// bucket (the CPU), a plain connection taking ConnectRate ÷
	// PlainConnectRate of a turn. 0: the same as ConnectRate (one price
	// for every connection); +Inf: plain connections take no turn.
	PlainConnectRate float64
	// ConnectQueue is how long a new connection may wait for its turn
	// under ConnectRate (traffic shaping) before it is refused.
	ConnectQueue time.Duration
	// AddressRate/AddressBurst limit new connections per source address.
	AddressRate  float64
	AddressBurst int
	// DeviceRate/DeviceBurst limit authenticated connects per device (an
	// SDK stuck in a reconnect loop); refused with 429005.
	DeviceRate  float64
	DeviceBurst int
	// Handshakes caps TLS handshakes in progress; HandshakeQueue is how
	// long an accepted connection may wait for a slot.
	Handshakes     int
	HandshakeQueue time.Duration
	// MessageRate/MessageBurst limit D2C messages per device;
	// HubMessageRate/HubMessageBurst all D2C messages. Messages over a
	// rate are held back (the device's reader waits for its turn); a
	// device over its rate without a break for longer than MessageQueue,
	// or a message whose turn under the hub's rate is further away than
	// MessageQueue, is refused.
	MessageRate     float64
	MessageBurst    int
	HubMessageRate  float64
	HubMessageBurst int
	MessageQueue    time.Duration
	// DailyQuota is D2C messages per UTC day (403002 beyond).
	DailyQuota int64
}

// Validate reports every problem at once.
func (l Limits) Validate() error {
	var errs []error
	for _, r := range []struct {
		name, zero string
		v          float64
	}{{"connect rate", "turns it off", l.ConnectRate}, {"plain connect rate", "prices plain TCP as TLS", l.PlainConnectRate},
		{"address rate", "turns it off", l.AddressRate}, {"device rate", "turns it off", l.DeviceRate},
		{"message rate", "turns it off", l.MessageRate}, {"hub message rate", "turns it off", l.HubMessageRate}} {
		if r.v < 0 || math.IsNaN(r.v) {
			errs = append(errs, fmt.Errorf("%s %v: must not be negative (0 %s)", r.name, r.v, r.zero))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"connect burst", l.ConnectBurst}, {"address burst", l.AddressBurst}, {"device burst", l.DeviceBurst},
		{"handshakes", l.Handshakes}, {"message burst", l.MessageBurst}, {"hub message burst", l.HubMessageBurst}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", n.name, n.v))
		}
	}
	if l.ConnectQueue < 0 || l.HandshakeQueue < 0 || l.MessageQueue < 0 {
		errs = append(errs, errors.New("queue waits must not be negative"))
	}
	if l.DailyQuota < 0 {
		errs = append(errs, fmt.Errorf("daily quota %d: must not be negative (0 turns it off)", l.DailyQuota))
	}
	return errors.Join(errs...)
}

// Scope says which limit refused something: the Scope dimension of the
// throttling metrics.
type Scope string

const (
	ScopeNone      Scope = ""
	ScopeHub       Scope = "hub"       // hub-wide (connections or messages)
	ScopeAddress   Scope = "address"   // per source address
	ScopeDevice    Scope = "device"    // per device (connects or messages)
	ScopeHandshake Scope = "handshake" // no handshake slot in time
	ScopeQuota     Scope = "quota"     // the daily message quota
)

// Limiter applies Limits. Its methods are safe for concurrent use; a nil
// Limiter limits nothing.
type Limiter struct {
	l   Limits
	hub *Bucket
	// cost is the turns under hub one new connection takes, by kind.
	cost      [2]float64
	addresses *Keyed
	devices   *Keyed
	handshake *Gate
	msgDevice *Keyed
	msgHub    *Bucket
	quota     *DailyQuota
}

// New checks l and returns its Limiter.
func New(l Limits, now time.Time) (*Limiter, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	hubRate, cost := connectPrices(l)
	// Unset bursts are one second's worth of their rate (0 where the
	// limit is off), so Limits tells what is in force.
	for _, b := range []struct {
		burst *int
		rate  float64
	}{{&l.ConnectBurst, hubRate}, {&l.AddressBurst, l.AddressRate}, {&l.DeviceBurst, l.DeviceRate},
		{&l.MessageBurst, l.MessageRate}, {&l.HubMessageBurst, l.HubMessageRate}} {
		if b.rate > 0 {
			*b.burst = burstOr(*b.burst, b.rate)
		} else {
			*b.burst = 0
		}
	}
	return &Limiter{
		l:         l,
		hub:       NewBucket(hubRate, l.ConnectBurst, now),
		cost:      cost,
		addresses: NewKeyed(l.AddressRate, l.AddressBurst),
		devices:   NewKeyed(l.DeviceRate, l.DeviceBurst),
		handshake: NewGate(l.Handshakes),
		msgDevice: NewKeyed(l.MessageRate, l.MessageBurst),
		msgHub:    NewBucket(l.HubMessageRate, l.HubMessageBurst, now),
		quota:     NewDailyQuota(l.DailyQuota),
	}, nil
}

// ConnectKind says what a new connection costs the hub: a TLS handshake
// (its own, or the HTTPS server's for WebSockets) or none.
type ConnectKind int

const (
	ConnectTLS   ConnectKind = iota // MQTT over TLS, MQTT over WebSockets
	ConnectPlain                    // MQTT over plain TCP
)

// connectPrices are the hub bucket's rate and what a connection of each
// kind takes from it. The bucket counts in the turns of ConnectRate (a
// TLS connect takes 1, a plain one ConnectRate ÷ PlainConnectRate); with
// ConnectRate off and PlainConnectRate set, it counts plain connects and
// TLS ones are free. A rate of 0 for the bucket: no hub-wide limit.
func connectPrices(l Limits) (rate float64, cost [2]float64) {
	tls, plain := l.ConnectRate, l.PlainConnectRate
	if plain == 0 {
		plain = tls
	}
	rate = tls
	if rate == 0 && !math.IsInf(plain, 1) {
		rate = plain
	}
	if rate == 0 {
		return 0, cost
	}
	for kind, r := range [2]float64{ConnectTLS: tls, ConnectPlain: plain} {
		if r > 0 {
			cost[kind] = rate / r // +Inf: 0
		}
	}
	return rate, cost
}

// burstOr is burst, or one second's worth of rate when unset.
func burstOr(burst int, rate float64) int {
	if burst > 0 {
		return burst
	}
	return max(1, int(rate))
}

// Limits are the limits in force (unset bursts filled in).
func (t *Limiter) Limits() Limits {
	if t == nil {
		return Limits{}
	}
	return t.l
}

// Connection admits a new connection of kind from address (the source
// IP): its address's bucket first (no wait), then the hub-wide rate at
// kind's price, waiting up to ConnectQueue for a turn. It returns the
// wait before going on, or the scope that refused it.
func (t *Limiter) Connection(address string, kind ConnectKind, now time.Time) (time.Duration, Scope) {
	if t == nil {
		return 0, ScopeNone
	}
	if _, ok := t.addresses.Reserve(address, now, 0); !ok {
		return 0, ScopeAddress
	}
	wait, ok := t.hub.ReserveN(t.cost[kind], now, t.l.ConnectQueue)
	if !ok {
		return 0, ScopeHub
	}
	return wait, ScopeNone
}

// DeviceConnect admits an authenticated connect of deviceID.
func (t *Limiter) DeviceConnect(deviceID string, now time.Time) bool {
	if t == nil {
		return true
	}
	_, ok := t.devices.Reserve(deviceID, now, 0)
	return ok
}

// Handshake takes a handshake slot, waiting up to HandshakeQueue (or
// until stop closes); release must be called once the handshake is over.
func (t *Limiter) Handshake(stop <-chan struct{}) (ok bool) {
	if t == nil {
		return true
	}
	return t.handshake.Acquire(t.l.HandshakeQueue, stop)
}

// HandshakeDone releases a slot Handshake granted.
func (t *Limiter) HandshakeDone() {
	if t != nil {
		t.handshake.Release()
	}
}

// Handshakes are the TLS handshakes in progress and those waiting for a
// slot.
func (t *Limiter) Handshakes() (inProgress, waiting int) {
	if t == nil {
		return 0, 0
	}
	return t.handshake.InProgress(), t.handshake.Waiting()
}

// Message admits a D2C message of deviceID: the device's rate (held back,
// refused after MessageQueue of continuous excess), then the hub's (held
// back up to MessageQueue), then the daily quota.
// It returns the wait before handing it on, or the scope that refused it.
func (t *Limiter) Message(deviceID string, now time.Time) (time.Duration, Scope) {
	if t == nil {
		return 0, ScopeNone
	}
	dw, ok := t.msgDevice.Shape(deviceID, now, t.l.MessageQueue, t.l.MessageQueue)
	if !ok {
		return 0, ScopeDevice
	}
	hw, ok := t.msgHub.Reserve(now, t.l.MessageQueue)
	if !ok {
		return 0, ScopeHub
	}
	if !t.quota.Take(now) {
		return 0, ScopeQuota
	}
	return max(dw, hw), ScopeNone
}

// QuotaUsed is today's message count against the daily quota (0 when
// there is none).
func (t *Limiter) QuotaUsed(now time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.quota.Used(now)
}

// SeedQuota sets today's count at start (see DailyQuota.Seed).
func (t *Limiter) SeedQuota(now time.Time, used int64) {
	if t != nil {
		t.quota.Seed(now, used)
	}
}

// Sweep drops per-key buckets that are full again; the broker calls it
// every minute.
func (t *Limiter) Sweep(now time.Time) {
	if t == nil {
		return
	}
	t.addresses.Sweep(now)
	t.devices.Sweep(now)
	t.msgDevice.Sweep(now)
}
