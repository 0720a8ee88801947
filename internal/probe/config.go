package probe

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/sas"
)

// Default ports, as IoT Hub serves them.
const (
	DefaultMQTTPort  = 8883
	DefaultHTTPSPort = 443
)

// ClientTypePrefix starts the DeviceClientType the probe sends, so the
// hub's Connections log (sdkVersion) shows which connections were probes.
const ClientTypePrefix = "tether-probe/"

// MaxIdle bounds the keep-alive test: a hub closes a connection idle for
// 1.5 × its keep-alive, but never later than 1767 s (29.45 min), so a
// longer silence cannot be told from the hub's own limit.
const MaxIdle = 29 * time.Minute

// tokenTTL is how long the probe's SAS tokens live: short, as the issue
// asks, yet long enough to outlast a slow connect.
const tokenTTL = 5 * time.Minute

// Config says what to probe and how. Only ConnectionString is required.
type Config struct {
	// ConnectionString is the device's: HostName=…;DeviceId=…;
	// SharedAccessKey=… (or SharedAccessSignature=…, or a policy's
	// SharedAccessKeyName=… with DeviceId). GatewayHostName, when present,
	// is dialled instead of HostName, with its port for MQTT.
	ConnectionString string
	// CAPEM, when set, replaces the system store for TLS (as the SDKs'
	// "ca" option does); CAName says where it came from ("--ca FILE").
	CAPEM  []byte
	CAName string
	// MQTTPort and HTTPSPort: 0 means GatewayHostName's port or 8883, and
	// 443.
	MQTTPort, HTTPSPort int
	// Proxy is an http:// proxy (HTTP CONNECT, optional user:password) for
	// the HTTPS port: clock and WebSockets.
	Proxy string
	// Publish sends one telemetry message in steps 5 and 6.
	Publish bool
	// Idle runs step 7 for this long (0: not run; at most MaxIdle).
	Idle time.Duration
	// Timeout bounds each network operation (default 10 s).
	Timeout time.Duration
	// ClientType is the DeviceClientType sent in the MQTT username
	// (default ClientTypePrefix + "dev").
	ClientType string
	// Now is the device's clock (default time.Now). Tests skew it.
	Now func() time.Time
	// OnStart is called once the Config is resolved, before the first
	// step, with the report's header fields filled; OnStep as each step
	// ends, in order (for live output).
	OnStart func(*Report)
	OnStep  func(Step)
	// Progress receives a line now and then during long steps.
	Progress func(string)
}

// target is a Config resolved: where to dial and with what identity.
type target struct {
	cs         sas.ConnectionString
	dialHost   string // GatewayHostName (without port) or HostName
	mqttPort   int
	httpsPort  int
	proxy      *url.URL
	roots      *x509.CertPool // nil: the system store
	caName     string
	timeout    time.Duration
	now        func() time.Time
	userName   string
	clientID   string
	clientType string
}

func (t *target) mqttAddr() string  { return joinHostPort(t.dialHost, t.mqttPort) }
func (t *target) httpsAddr() string { return joinHostPort(t.dialHost, t.httpsPort) }

func joinHostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// resolve checks cfg and reports every problem at once.
func resolve(cfg Config) (*target, error) {
	var errs []error
	t := &target{timeout: cfg.Timeout, now: cfg.Now, caName: cfg.CAName}
	if t.timeout <= 0 {
		t.timeout = 10 * time.Second
	}
	if t.now == nil {
		t.now = time.Now
	}
	cs, err := parseDeviceConnectionString(cfg.ConnectionString)
	if err != nil {
		errs = append(errs, err)
	}
	if cs.SharedAccessKey != "" {
		if _, err := base64.StdEncoding.DecodeString(cs.SharedAccessKey); err != nil {
			errs = append(errs, errors.New("connection string: SharedAccessKey is not base64 (copy it whole, '=' padding included)"))
		}
	} else if cs.SharedAccessSignature != "" {
		if _, err := sas.Parse(cs.SharedAccessSignature); err != nil {
			errs = append(errs, fmt.Errorf("connection string: SharedAccessSignature: %w", err))
		}
	}
	t.cs = cs
	t.dialHost = cs.HostName
	gwPort := 0
	if gw := cs.GatewayHostName; gw != "" {
		t.dialHost = gw
		if h, p, err := net.SplitHostPort(gw); err == nil {
			n, perr := strconv.Atoi(p)
			if perr != nil || n < 1 || n > 65535 {
				errs = append(errs, fmt.Errorf("connection string: GatewayHostName %q has a bad port", gw))
			}
			t.dialHost, gwPort = h, n
		}
	}
	t.mqttPort = firstPort(cfg.MQTTPort, gwPort, DefaultMQTTPort)
	t.httpsPort = firstPort(cfg.HTTPSPort, DefaultHTTPSPort)
	for name, p := range map[string]int{"mqtt-port": cfg.MQTTPort, "https-port": cfg.HTTPSPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: want a TCP port, 1–65535", name, p))
		}
	}
	if cfg.Proxy != "" {
		u, err := parseProxy(cfg.Proxy)
		if err != nil {
			errs = append(errs, err)
		}
		t.proxy = u
	}
	if len(cfg.CAPEM) > 0 {
		t.roots = x509.NewCertPool()
		if !t.roots.AppendCertsFromPEM(cfg.CAPEM) {
			errs = append(errs, fmt.Errorf("%s holds no PEM certificate", caLabel(cfg.CAName)))
		}
	}
	switch {
	case cfg.Idle < 0:
		errs = append(errs, errors.New("idle: must not be negative"))
	case cfg.Idle > MaxIdle:
		errs = append(errs, fmt.Errorf("idle %s: at most %s (a hub closes any connection silent for 1767 s, whatever its keep-alive)", cfg.Idle, MaxIdle))
	case cfg.Idle > 0 && cfg.Idle+t.timeout >= 1767*time.Second:
		errs = append(errs, fmt.Errorf("idle %s + timeout %s: must stay under 1767 s, the longest a hub waits for a silent connection", cfg.Idle, t.timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t.clientType = cfg.ClientType
	if t.clientType == "" {
		t.clientType = ClientTypePrefix + "dev"
	}
	t.userName, t.clientID = username(cs, t.clientType)
	return t, nil
}

func firstPort(ps ...int) int {
	for _, p := range ps {
		if p > 0 {
			return p
		}
	}
	return 0
}

func caLabel(name string) string {
	if name == "" {
		return "the CA"
	}
	return name
}

// parseDeviceConnectionString accepts what a device is given; a policy
// connection string must name the device too.
func parseDeviceConnectionString(s string) (sas.ConnectionString, error) {
	if strings.TrimSpace(s) == "" {
		return sas.ConnectionString{}, errors.New("no connection string: pass the device's, HostName=…;DeviceId=…;SharedAccessKey=…")
	}
	if strings.Contains(strings.ToLower(s), "x509=true") {
		return sas.ConnectionString{}, errors.New("connection string: X.509 devices cannot be probed yet (the hub does not support X.509 authentication); use a SAS device")
	}
	cs, err := sas.ParseConnectionString(s)
	if err != nil {
		return cs, err
	}
	if cs.DeviceID == "" {
		return cs, errors.New("connection string: no DeviceId: the probe connects as a device (HostName=…;DeviceId=…;SharedAccessKey=…)")
	}
	if strings.ContainsAny(cs.HostName, "/: ") {
		return cs, fmt.Errorf("connection string: HostName %q must be a bare host name (put a port in GatewayHostName or use --mqtt-port)", cs.HostName)
	}
	return cs, nil
}

// parseProxy accepts http://[user:password@]host:port.
func parseProxy(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("proxy %q: want http://[user:password@]host:port", s)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("proxy %q: only http:// proxies (HTTP CONNECT) are supported", s)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "80")
	}
	return u, nil
}

// redactedProxy is the proxy URL without its password, for reports.
func (t *target) redactedProxy() string {
	if t.proxy == nil {
		return ""
	}
	return t.proxy.Redacted()
}

// username and client id as the SDKs build them (azure-sdk-wire.md §2).
func username(cs sas.ConnectionString, clientType string) (user, clientID string) {
	path := cs.HostName + "/" + cs.DeviceID
	clientID = cs.DeviceID
	if cs.ModuleID != "" {
		path += "/" + cs.ModuleID
		clientID += "/" + cs.ModuleID
	}
	ct := strings.ReplaceAll(url.QueryEscape(clientType), "+", "%20")
	return path + "/?api-version=" + apiVersion + "&DeviceClientType=" + ct, clientID
}

// apiVersion is what the SDKs put in the username.
const apiVersion = "2021-04-12"

// resource is the token's sr: the device (or module) on the hub.
func (t *target) resource() string {
	r := sas.DeviceResource(t.cs.HostName, t.cs.DeviceID)
	if t.cs.ModuleID != "" {
		r += "/modules/" + t.cs.ModuleID
	}
	return r
}

// token returns the SAS token to connect with, valid for ttl by the
// device's clock, and its expiry. A fixed SharedAccessSignature from the
// connection string is used as it is.
func (t *target) token(ttl time.Duration) (string, time.Time, error) {
	if t.cs.SharedAccessKey == "" {
		tok, err := sas.Parse(t.cs.SharedAccessSignature)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("the connection string's SharedAccessSignature: %w", err)
		}
		return t.cs.SharedAccessSignature, tok.Expiry, nil
	}
	exp := t.now().Add(ttl)
	tok, err := sas.Sign(t.resource(), t.cs.SharedAccessKey, t.cs.SharedAccessKeyName, exp)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("the connection string's SharedAccessKey: %w", err)
	}
	return tok, time.Unix(exp.Unix(), 0), nil
}

// telemetryTopic is the device's (or module's) D2C topic.
func (t *target) telemetryTopic() string {
	if t.cs.ModuleID != "" {
		return "devices/" + t.cs.DeviceID + "/modules/" + t.cs.ModuleID + "/messages/events/"
	}
	return "devices/" + t.cs.DeviceID + "/messages/events/"
}
