package sim

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Config is one simulation run. Zero values take the defaults of
// Defaults; Validate reports every problem at once.
type Config struct {
	Devices  int           `json:"devices"`
	Prefix   string        `json:"prefix"`   // device ids are <prefix>-<i>
	Duration time.Duration `json:"duration"` // from the first connect; 0: until the context ends
	Ramp     float64       `json:"ramp"`     // connects per second at the start
	// ConnectRate caps the fleet's connect attempts a second, first
	// connects and reconnects (after a crash, a node's stop, a storm)
	// alike; 0: no cap (pace.go).
	ConnectRate float64       `json:"connectRate"`
	Profile     string        `json:"profile"`
	TokenTTL    time.Duration `json:"tokenTtl"`   // 0: the profile's
	KeepAlive   time.Duration `json:"keepAlive"`  // 0: the profile's
	Telemetry   time.Duration `json:"telemetry"`  // interval; 0: none
	Payload     int           `json:"payload"`    // telemetry bytes
	WebSockets  float64       `json:"webSockets"` // fraction of devices on MQTT over WebSockets
	Faults      Faults        `json:"faults"`
	// Scenarios reproduce the causes `tether diagnose` recognises on
	// chosen devices (scenario.go).
	Scenarios Scenarios `json:"scenarios,omitempty"`
	Seed      uint64    `json:"seed"`

	// Device twins and direct methods (twin.go, driver.go). The devices
	// use them the way the profile's SDK does; the service side is the
	// simulator's driver over the hub's REST API.
	Twin           bool          `json:"twin"`           // devices GET their twin, report, take desired pushes
	Methods        bool          `json:"methods"`        // devices answer direct methods
	ReportedEvery  time.Duration `json:"reportedEvery"`  // reported patch interval after the start-up one; 0: start-up only
	MethodDelay    time.Duration `json:"methodDelay"`    // simulated processing before a device answers
	MethodRate     float64       `json:"methodRate"`     // direct method calls per second over the fleet
	MethodNoAnswer float64       `json:"methodNoAnswer"` // fraction of calls to a method no device handles (504101)
	MethodOffline  float64       `json:"methodOffline"`  // fraction of calls to registered devices that never connect (404103)
	MethodTimeout  time.Duration `json:"methodTimeout"`  // the calls' responseTimeoutInSeconds
	DesiredRate    float64       `json:"desiredRate"`    // desired-property updates per second over the fleet
	TwinTimeout    time.Duration `json:"twinTimeout"`    // a twin request unanswered this long on a live connection is a failure

	// Hub addresses: MQTTAddr is host:port of MQTT/TLS, HTTPSAddr of the
	// HTTPS port (MQTT-WS). HubName is the IoT Hub host name of usernames
	// and tokens (the owner connection string's HostName).
	HubName   string `json:"hubName"`
	MQTTAddr  string `json:"mqttAddr"`
	HTTPSAddr string `json:"httpsAddr"`
	// MQTTAddrs, when set, are the MQTT/TLS addresses of a cluster's
	// nodes (MQTTAddr is the first): device i connects to the i-th in
	// turn, and its dup copy to the next one, so a dup is a cross-node
	// takeover.
	MQTTAddrs []string `json:"mqttAddrs,omitempty"`
	CAPEM     []byte   `json:"caPem,omitempty"`
	Insecure  bool     `json:"insecure"` // skip certificate verification

	Sources    int `json:"sources"`    // loopback source addresses 127.0.0.2…
	PerProcess int `json:"perProcess"` // devices per process before workers

	SilenceKeepAlive  time.Duration `json:"silenceKeepAlive"`  // keep-alive of devices picked for silence
	DisableFor        time.Duration `json:"disableFor"`        // how long a disabled device stays disabled
	SlowTLSDelay      time.Duration `json:"slowTlsDelay"`      // how long a slow client stretches its handshake
	HubConnectTimeout time.Duration `json:"hubConnectTimeout"` // the hub's --connect-timeout
	Settle            time.Duration `json:"settle"`            // wait at most this for events after the stop
	StableAfter       time.Duration `json:"stableAfter"`       // a session this old resets the retry count
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Prefix == "" {
		c.Prefix = "sim"
	}
	if c.Ramp == 0 {
		c.Ramp = 500
	}
	if c.Profile == "" {
		c.Profile = "node"
	}
	if c.Payload == 0 {
		c.Payload = 64
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Sources == 0 {
		c.Sources = 60
	}
	if c.PerProcess == 0 {
		c.PerProcess = 15000
	}
	if c.HubName == "" {
		c.HubName = "localhost"
	}
	def(&c.SilenceKeepAlive, 10*time.Second)
	def(&c.DisableFor, 20*time.Second)
	def(&c.SlowTLSDelay, 2*time.Second)
	def(&c.HubConnectTimeout, 10*time.Second)
	def(&c.Settle, 90*time.Second)
	def(&c.StableAfter, 5*time.Second)
	def(&c.MethodTimeout, 5*time.Second)
	def(&c.TwinTimeout, 30*time.Second)
}

// HubCrashAt is when the hub-crash fault kills the hub (in a cluster: the
// node at the last address), as an offset from the start, if the run has
// one.
func (c *Config) HubCrashAt() (time.Duration, bool) {
	f, ok := c.Faults.Get(FaultHubCrash)
	return f.At, ok
}

// Validate reports every problem of c.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Devices < 1 {
		bad("--devices must be at least 1")
	}
	if strings.ContainsAny(c.Prefix, "/#+ ") {
		bad("--prefix %q: no '/', '#', '+' or spaces", c.Prefix)
	}
	if c.Duration < 0 {
		bad("--duration must not be negative")
	}
	if c.Ramp <= 0 {
		bad("--ramp must be positive (connects per second)")
	}
	if c.ConnectRate < 0 {
		bad("--connect-rate must not be negative (connects per second; 0: no cap)")
	}
	if _, err := LookupProfile(c.Profile); err != nil {
		errs = append(errs, err)
	}
	if c.TokenTTL < 0 || (c.TokenTTL > 0 && c.TokenTTL < 5*time.Second) {
		bad("--token-ttl must be at least 5s")
	}
	if c.KeepAlive < 0 || c.KeepAlive > 65535*time.Second {
		bad("--keep-alive must be 0…65535s")
	}
	if c.Telemetry < 0 {
		bad("--telemetry must not be negative")
	}
	if c.Payload < 0 || c.Payload > 256<<10 {
		bad("--payload must be 0…262144 bytes")
	}
	if c.WebSockets < 0 || c.WebSockets > 1 {
		bad("--ws must be a fraction 0…1")
	}
	if c.MQTTAddr == "" && c.WebSockets < 1 {
		bad("no MQTT address")
	}
	if _, ok := c.Faults.Get(FaultRollingRestart); ok && len(c.MQTTAddrs) < 2 {
		bad("--faults rolling-restart restarts a cluster's nodes in turn: give their addresses (--mqtt-addr a,b,c)")
	}
	if c.HTTPSAddr == "" && c.WebSockets > 0 {
		bad("no HTTPS address for MQTT over WebSockets")
	}
	if c.Sources < 1 || c.Sources > 253 {
		bad("--sources must be 1…253")
	}
	if c.PerProcess < 1 || c.PerProcess > 19000 {
		bad("--per-process must be 1…19000 (one process may hold 20,000 open files)")
	}
	c.validateTwins(bad)
	c.validateScenarios(bad)
	for _, k := range []FaultKind{FaultStorm, FaultHubCrash, FaultRollingRestart} {
		if f, ok := c.Faults.Get(k); ok && c.Duration > 0 && f.At >= c.Duration {
			bad("%s at %s is after the end of the run (%s)", k, f.At, c.Duration)
		}
	}
	return errors.Join(errs...)
}

// maxServiceRate bounds --method-rate and --desired-rate: the driver is
// one process calling the hub's REST API.
const maxServiceRate = 5000

func (c *Config) validateTwins(bad func(string, ...any)) {
	if c.ReportedEvery < 0 {
		bad("--reported-every must not be negative")
	}
	if c.MethodDelay < 0 || c.MethodDelay > time.Minute {
		bad("--method-delay must be 0…1m")
	}
	if c.MethodRate < 0 || c.MethodRate > maxServiceRate {
		bad("--method-rate must be 0…%d per second", maxServiceRate)
	}
	if c.DesiredRate < 0 || c.DesiredRate > maxServiceRate {
		bad("--desired-rate must be 0…%d per second", maxServiceRate)
	}
	if c.MethodNoAnswer < 0 || c.MethodOffline < 0 || c.MethodNoAnswer+c.MethodOffline > 1 {
		bad("--method-no-answer and --method-offline are fractions of the calls (0…1, together at most 1)")
	}
	if c.MethodTimeout < 5*time.Second || c.MethodTimeout > 300*time.Second {
		bad("--method-timeout must be 5s…300s (IoT Hub's responseTimeoutInSeconds)")
	}
	if c.TwinTimeout < time.Second {
		bad("--twin-timeout must be at least 1s")
	}
	if c.MethodRate > 0 && !c.Methods && c.MethodOffline < 1 {
		bad("--method-rate needs --methods (devices that answer direct methods)")
	}
	if c.DesiredRate > 0 && !c.Twin {
		bad("--desired-rate needs --twin (devices that take desired-property pushes)")
	}
}

// ParseRate parses a rate: "100/s", "30/min", "2/h" or a bare number
// (per second); the result is per second.
func ParseRate(s string) (float64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("rate %q: want a number and an optional unit, e.g. 100/s, 30/min", s)
	}
	switch strings.TrimSpace(unit) {
	case "", "s", "sec":
		return v, nil
	case "m", "min":
		return v / 60, nil
	case "h", "hour":
		return v / 3600, nil
	}
	return 0, fmt.Errorf("rate %q: unit must be /s, /min or /h", s)
}

// FormatRate prints a per-second rate the way ParseRate reads it.
func FormatRate(perSecond float64) string {
	if perSecond > 0 && perSecond < 1 {
		return strconv.FormatFloat(perSecond*60, 'f', -1, 64) + "/min"
	}
	return strconv.FormatFloat(perSecond, 'f', -1, 64) + "/s"
}

// profile returns the profile with the overrides of c applied.
func (c *Config) profile() Profile {
	p, _ := LookupProfile(c.Profile)
	if c.TokenTTL > 0 {
		p.TokenTTL = c.TokenTTL
	}
	if c.KeepAlive > 0 {
		p.KeepAlive = c.KeepAlive
	}
	return p
}

// DeviceID is the id of device i.
func (c *Config) DeviceID(i int) string { return fmt.Sprintf("%s-%d", c.Prefix, i) }
