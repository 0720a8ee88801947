package app

import (
	"crypto"
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/metrics"
	"github.com/tether-hub/tether/internal/notify"
	"github.com/tether-hub/tether/internal/throttle"
)

// Config is everything the hub needs to run. Zero values take the defaults
// below (Defaults), so a test sets only what it cares about.
type Config struct {
	// DataDir holds the journal, the log database and (dev) certificates.
	DataDir string
	// HubName is the host name devices put in usernames and SAS tokens
	// (HostName= in connection strings).
	HubName string
	// MQTTAddr serves MQTT over TLS (IoT Hub: 8883).
	MQTTAddr string
	// HTTPSAddr serves the REST API, /api/v1 and MQTT over WebSockets at
	// /$iothub/websocket (IoT Hub: 443).
	HTTPSAddr string
	// TCPAddr serves plain MQTT when set; off by default.
	TCPAddr string
	// NATSURL points at an external NATS cluster; empty embeds one.
	NATSURL string
	// Cluster makes this hub one node of several acting as one
	// (clustering.go): NodeName names it; with ClusterName, ClusterListen
	// and ClusterPeers the embedded NATS server joins the other nodes' in
	// a JetStream cluster, with NATSURL all nodes share an external one.
	Cluster ClusterConfig
	// JournalSyncAlways fsyncs every journal write of the embedded server
	// (journal.Options.SyncAlways).
	JournalSyncAlways bool
	// TLSCertFile/TLSKeyFile: the server certificate. Empty with Dev makes
	// a dev CA and certificate in DataDir.
	TLSCertFile, TLSKeyFile string
	// CertCheckEvery is how often the certificate files are checked for
	// a renewal (default DefaultCertCheckEvery); SIGHUP reloads at once.
	CertCheckEvery time.Duration
	// Dev: generate certificates, write the owner connection string, the
	// API URL and the CA into DataDir for the CLI.
	Dev bool
	// ConnectTimeout bounds TLS handshake + CONNECT.
	ConnectTimeout time.Duration
	// LogRetention is how long Connections log records are kept.
	LogRetention time.Duration
	// LogMemory bounds the log store's memory in bytes (DuckDB's
	// memory_limit: buffer pool, sorts, hash tables; queries spill to disk
	// past it); 0: 512 MiB. --log-memory.
	LogMemory int64
	// ArchiveDir holds the archive files of diagnostic settings (default
	// <DataDir>/archive).
	ArchiveDir string
	// Clock is the retention clock of the log destinations (tests inject
	// one); default time.Now.
	Clock func() time.Time
	// RetentionEvery is how often log retention runs (default 1 h).
	RetentionEvery time.Duration
	// MetricsRecent is how long the metrics history keeps the 1 s grain;
	// MetricsRetention the 1 min grain (defaults: 1 h, 30 days).
	MetricsRecent, MetricsRetention time.Duration
	// CompactAfter is the connect burst after which the hub returns memory
	// to the OS once connects pause (compact.go); 0 means 1000, negative
	// turns it off.
	CompactAfter int
	// DebugAddr serves Go's /debug/pprof profiles over plain HTTP; off
	// when empty. Bind it to loopback.
	DebugAddr string
	// RulesFile holds the alert rules and action groups (YAML); empty: no
	// rules. Reloaded by App.ReloadRules (SIGHUP).
	RulesFile string
	// SMTP is the mail server of Email event subscriptions (the password
	// from the environment, TETHER_SMTP_PASSWORD); none without Addr.
	SMTP notify.SMTP
	// EventCommandDir holds the programs Command event subscriptions may
	// run; none without it.
	EventCommandDir string
	// AllowLoopbackEndpoints lets webhook subscriptions reach receivers on
	// this machine's loopback addresses (events.EndpointPolicy); the hub's
	// own listeners stay refused. nil: allowed with Dev, refused without.
	AllowLoopbackEndpoints *bool
	// EventRetrySchedule replaces Event Grid's retry schedule of event
	// subscriptions (tests).
	EventRetrySchedule []time.Duration
	// ShutdownTimeout bounds Stop.
	ShutdownTimeout time.Duration
	// Limits are the throttles (internal/throttle, docs/sizing.md). A
	// zero field takes its default (Defaults; the connect rate and the
	// handshake cap are sized at Start to the cores and the server key); a
	// negative one turns that limit off. NoThrottle turns all off.
	Limits     throttle.Limits
	NoThrottle bool
}

// Default limits (docs/sizing.md says why). The hub-wide connect rates
// are throttle.DefaultConnectRates; the handshake cap handshakeSeconds of it,
// at least minHandshakes. The cap bounds handshakes in progress, not CPU
// (the rate does that): at the rate R with handshakes taking L seconds,
// R·L are in progress, so a cap of one second's worth throttled below the
// rate as soon as clients took longer than a second — devices whose ECDHE
// takes most of a second, cellular round trips, or clients busy with
// their own retries in a storm (bench/README.md, reconnect storm).
const (
	// DefaultConnectQueue is the Node SDK's longest back-off (10 s,
	// unjittered): a device refused in a storm retries exactly that long
	// later, together with every device refused with it, so the refused
	// come back in waves with nothing between them. A queue as long as the
	// back-off holds a wave until its turn, and the hub works at its rate
	// through what would be gaps (bench/README.md, reconnect storm: +30 %
	// time to all connected with 2 s, +0 % with 10 s). A queued connection
	// is a socket and a sleeping goroutine, before any TLS; the SDKs wait
	// 30–60 s for their CONNACK.
	DefaultConnectQueue   = 10 * time.Second
	DefaultHandshakeQueue = 2 * time.Second
	DefaultMessageQueue   = time.Second
	DefaultDeviceRate     = 1.0 // connects a second per device, sustained
	DefaultDeviceBurst    = 10
	minHandshakes         = 64
	handshakeSeconds      = 3
)

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.DataDir == "" {
		c.DataDir = "tether-data"
	}
	if c.HubName == "" {
		c.HubName = "localhost"
	}
	if c.MQTTAddr == "" {
		c.MQTTAddr = ":8883"
	}
	if c.HTTPSAddr == "" {
		c.HTTPSAddr = ":443"
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ArchiveDir == "" {
		c.ArchiveDir = filepath.Join(c.DataDir, "archive")
	}
	if c.LogRetention == 0 {
		c.LogRetention = 30 * 24 * time.Hour
	}
	if c.MetricsRecent == 0 {
		c.MetricsRecent = metrics.DefaultRecent
	}
	if c.MetricsRetention == 0 {
		c.MetricsRetention = metrics.DefaultRetention
	}
	if c.CompactAfter == 0 {
		c.CompactAfter = 1000
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	l := &c.Limits
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&l.ConnectQueue, DefaultConnectQueue}, {&l.HandshakeQueue, DefaultHandshakeQueue}, {&l.MessageQueue, DefaultMessageQueue}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if l.DeviceRate == 0 {
		l.DeviceRate = DefaultDeviceRate
	}
	if l.DeviceBurst == 0 {
		l.DeviceBurst = DefaultDeviceBurst
	}
}

// limits are the Limits in force: defaults sized to this machine with
// key (the server's private key) for the unset connect rates and
// handshake cap, negative fields (and everything under NoThrottle) off.
// An unset connect rate is sized per transport (a TLS connect and a
// plain-TCP one, throttle.DefaultConnectRates), and sized says so; a
// configured one with no plain-TCP rate applies to every connection.
func (c *Config) limits(key crypto.Signer) (l throttle.Limits, sized *throttle.Sizing) {
	if c.NoThrottle {
		return throttle.Limits{}, nil
	}
	l = c.Limits
	if l.ConnectRate == 0 && key != nil {
		s := throttle.DefaultConnectRates(key, runtime.GOMAXPROCS(0))
		sized = &s
		l.ConnectRate = s.TLSRate
		if l.PlainConnectRate == 0 {
			l.PlainConnectRate = s.PlainRate
		}
	}
	if l.Handshakes == 0 && l.ConnectRate > 0 {
		l.Handshakes = max(minHandshakes, int(handshakeSeconds*l.ConnectRate))
	}
	if l.PlainConnectRate < 0 {
		l.PlainConnectRate = math.Inf(1) // plain connects take no turn
	}
	off := func(v *float64) {
		if *v < 0 {
			*v = 0
		}
	}
	off(&l.ConnectRate)
	off(&l.AddressRate)
	off(&l.DeviceRate)
	off(&l.MessageRate)
	off(&l.HubMessageRate)
	for _, n := range []*int{&l.ConnectBurst, &l.AddressBurst, &l.DeviceBurst, &l.Handshakes, &l.MessageBurst, &l.HubMessageBurst} {
		*n = max(*n, 0)
	}
	l.DailyQuota = max(l.DailyQuota, 0)
	return l, sized
}

// allowLoopbackEndpoints resolves AllowLoopbackEndpoints.
func (c *Config) allowLoopbackEndpoints() bool {
	if c.AllowLoopbackEndpoints != nil {
		return *c.AllowLoopbackEndpoints
	}
	return c.Dev
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	for name, addr := range map[string]string{"mqtt-addr": c.MQTTAddr, "https-addr": c.HTTPSAddr, "tcp-addr": c.TCPAddr, "debug-addr": c.DebugAddr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port (e.g. :8883 or 127.0.0.1:0)", name, addr))
		}
	}
	if strings.ContainsAny(c.HubName, "/ ;") {
		errs = append(errs, fmt.Errorf("hub-name %q: a host name cannot contain '/', ';' or spaces", c.HubName))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls-cert and tls-key go together"))
	}
	if c.TLSCertFile == "" && !c.Dev {
		errs = append(errs, errors.New("no TLS certificate: pass --tls-cert and --tls-key, or --dev to generate a development CA"))
	}
	if c.SMTP.Addr != "" {
		if _, _, err := net.SplitHostPort(c.SMTP.Addr); err != nil {
			errs = append(errs, fmt.Errorf("smtp-addr %q: want host:port (e.g. smtp.example.com:587)", c.SMTP.Addr))
		}
		if c.SMTP.From == "" {
			errs = append(errs, errors.New("smtp-addr needs smtp-from, the sender address of event mails"))
		}
	}
	errs = append(errs, c.Cluster.validate(c.NATSURL)...)
	if c.ConnectTimeout < 0 || c.LogRetention < 0 || c.ShutdownTimeout < 0 || c.MetricsRecent < 0 || c.MetricsRetention < 0 ||
		c.Limits.ConnectQueue < 0 || c.Limits.HandshakeQueue < 0 || c.Limits.MessageQueue < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	return errors.Join(errs...)
}
