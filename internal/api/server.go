package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/kql"
	"github.com/tether-hub/tether/internal/registry"
)

// LogFilter selects log records: the log package's filter, parsed from
// the query by connlog.FilterFromQuery so the CLI and the API agree.
type LogFilter = connlog.Filter

// LogFinder searches the hub's resource logs (connlog). Records are
// returned as JSON-ready maps in the AzureDiagnostics column shape.
type LogFinder interface {
	Find(ctx context.Context, f LogFilter) ([]map[string]any, error)
}

// QueryRunner runs KQL queries over the log (kql.Engine). Mistakes in the
// query come back as *kql.Error.
type QueryRunner interface {
	Run(ctx context.Context, req kql.Request) (*kql.Result, error)
}

// C2DSender queues a cloud-to-device message for a device. It returns an
// error wrapping registry.ErrNotFound when there is no such device, and may
// wrap ErrThrottled when the device's queue is full.
type C2DSender interface {
	SendC2D(ctx context.Context, deviceID string, payload []byte, props map[string]string, messageID string) error
}

// TelemetrySource delivers device-to-cloud messages as they arrive, for
// one device or all ("" deviceID), calling fn until ctx is done; it blocks
// until then and returns ctx.Err() or the error that stopped it. fn must
// not block for long; the API's fn never does.
type TelemetrySource interface {
	Subscribe(ctx context.Context, deviceID string, fn func(TelemetryMessage)) error
}

// TelemetryMessage is one D2C message.
type TelemetryMessage struct {
	DeviceID         string
	EnqueuedTime     time.Time
	Payload          []byte
	Properties       map[string]string
	SystemProperties map[string]string
}

// Deps are what the API serves from. Registry and HubName are required.
type Deps struct {
	Registry *registry.Registry
	HubName  string
	Logger   *slog.Logger
	Logs     LogFinder
	// Query runs POST /api/v1/query; nil: 503.
	Query QueryRunner
	// QueryLimits bound the queries running and waiting at once; zero
	// fields take DefaultQueryLimits.
	QueryLimits QueryLimits
	C2D         C2DSender
	Telemetry   TelemetrySource
	// Subscriptions manages webhook event subscriptions
	// (/api/v1/subscriptions); nil: those endpoints answer 503.
	Subscriptions SubscriptionService
	// SubscriptionPolicy is the hub's policy for subscription definitions
	// (whether plain-http endpoints are accepted beyond loopback).
	SubscriptionPolicy events.ValidateOptions
	// DiagnosticSettings routes resource logs
	// (/api/v1/diagnostic-settings); nil: those endpoints answer 503.
	DiagnosticSettings DiagnosticSettings
	// Events is the live event feed of GET /api/v1/events; nil: 503.
	Events EventTail
	// Alerts is the alert rules engine (/api/v1/alerts); nil: 503.
	Alerts AlertService
	// Metrics answers GET /api/v1/metrics; nil: 503.
	Metrics MetricsSource
	// Methods invokes direct methods (POST /twins/{id}/methods); nil: 503.
	Methods MethodInvoker
	// Operations journals twin, method and query operations; nil: they
	// are not logged.
	Operations OperationRecorder
	// Backup streams GET /api/v1/backup; nil: 503.
	Backup BackupService
	// Insights answers diagnoses, flap scores and incidents; nil: 503.
	Insights InsightSource
	// Cluster answers GET /api/v1/cluster; nil: the hub is alone (404).
	Cluster ClusterSource
	// Now is the clock for token expiry and relative log times; default
	// time.Now.
	Now func() time.Time
	// Heartbeat is the interval of keep-alive comments on event streams;
	// default 15s.
	Heartbeat time.Duration
}

// Server is the hub's HTTP API handler.
type Server struct {
	d       Deps
	log     *slog.Logger
	queries *queryGate
}

// New returns the API handler.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Heartbeat <= 0 {
		d.Heartbeat = 15 * time.Second
	}
	return &Server{d: d, log: d.Logger, queries: newQueryGate(d.QueryLimits)}
}

// Path prefixes the API serves; everything else is 404.
const (
	devicesPrefix = "/devices/"
	twinsPrefix   = "/twins/"
	v1Prefix      = "/api/v1/"
)

// ServeHTTP routes on the escaped path (see the package doc for why not
// http.ServeMux: it cleans paths, so ids like ".." would be redirected).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-ms-request-id", requestID(r))
	path := r.URL.EscapedPath()
	switch {
	case path == "/devices/query" && r.Method == http.MethodPost:
		if s.apiVersion(w, r) {
			s.deviceQuery(w, r)
		}
	case path == "/devices" || path == devicesPrefix:
		s.registryCall(w, r, "", false)
	case strings.HasPrefix(path, devicesPrefix):
		seg := path[len(devicesPrefix):]
		if strings.Contains(seg, "/") {
			s.azureError(w, r, http.StatusNotFound, "NotFound",
				fmt.Sprintf("%s is not served: Tether implements the device identity registry, not modules", path))
			return
		}
		s.registryCall(w, r, seg, true)
	case strings.HasPrefix(path, twinsPrefix):
		s.twinsCall(w, r, path[len(twinsPrefix):])
	case strings.HasPrefix(path, v1Prefix):
		s.v1(w, r, path[len(v1Prefix):])
	default:
		s.azureError(w, r, http.StatusNotFound, "NotFound", fmt.Sprintf("no such endpoint: %s", path))
	}
}

// v1 routes /api/v1/{rest}.
func (s *Server) v1(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case rest == "health":
		if !allow(w, r, s.v1Error, http.MethodGet, http.MethodHead) {
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case rest == "logs":
		if allow(w, r, s.v1Error, http.MethodGet) {
			s.getLogs(w, r)
		}
	case rest == "metrics":
		if allow(w, r, s.v1Error, http.MethodGet) {
			s.getMetrics(w, r)
		}
	case rest == "cluster":
		if allow(w, r, s.v1Error, http.MethodGet) {
			s.getCluster(w, r)
		}
	case rest == "query":
		if allow(w, r, s.v1Error, http.MethodPost) {
			s.postQuery(w, r)
		}
	case rest == "telemetry":
		if allow(w, r, s.v1Error, http.MethodGet) {
			s.streamTelemetry(w, r)
		}
	case rest == "events":
		if allow(w, r, s.v1Error, http.MethodGet) {
			s.streamEvents(w, r)
		}
	case rest == "alerts" || strings.HasPrefix(rest, "alerts/"):
		s.alerts(w, r, strings.TrimPrefix(rest, "alerts"))
	case rest == "diagnostic-settings" || strings.HasPrefix(rest, "diagnostic-settings/"):
		s.diagnosticSettings(w, r, strings.TrimPrefix(rest, "diagnostic-settings"))
	case rest == "certificates" || strings.HasPrefix(rest, "certificates/"):
		s.certificates(w, r, strings.TrimPrefix(rest, "certificates"))
	case rest == "backup":
		if allow(w, r, s.v1Error, http.MethodGet) {
			s.getBackup(w, r)
		}
	case rest == "policies" || strings.HasPrefix(rest, "policies/"):
		s.policies(w, r, strings.TrimPrefix(rest, "policies"))
	case rest == "subscriptions" || strings.HasPrefix(rest, "subscriptions/"):
		s.subscriptions(w, r, strings.TrimPrefix(rest, "subscriptions"))
	case rest == "insights" || strings.HasPrefix(rest, "insights/"):
		s.insights(w, r, strings.TrimPrefix(rest, "insights"))
	case strings.HasPrefix(rest, "devices/") && strings.HasSuffix(rest, diagnosisSuffix):
		seg, ok := isDiagnosisPath(rest)
		if !ok {
			s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath())
			return
		}
		if allow(w, r, s.v1Error, http.MethodGet) {
			s.getDiagnosis(w, r, seg)
		}
	case strings.HasPrefix(rest, "devices/") && strings.HasSuffix(rest, "/messages"):
		seg := strings.TrimSuffix(strings.TrimPrefix(rest, "devices/"), "/messages")
		if seg == "" || strings.Contains(seg, "/") {
			s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath())
			return
		}
		if allow(w, r, s.v1Error, http.MethodPost) {
			s.postMessage(w, r, seg)
		}
	default:
		s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath())
	}
}

// errorWriter writes an error in one of the two body styles.
type errorWriter func(w http.ResponseWriter, r *http.Request, status int, code, msg string)

// allow answers 405 unless r uses one of methods.
func allow(w http.ResponseWriter, r *http.Request, fail errorWriter, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	fail(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed",
		fmt.Sprintf("%s is not allowed here; use %s", r.Method, strings.Join(methods, " or ")))
	return false
}

// authorize checks the caller's token for need and returns the policy
// name, or writes the 401 and returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, need registry.Rights, fail errorWriter) (string, bool) {
	if isLocalAdmin(r.Context()) {
		return LocalAdmin, true
	}
	if policy, err, ok := s.sessionPolicy(r.Context(), need); ok {
		if err != nil {
			s.fail(w, r, err, fail)
			return "", false
		}
		return policy, true
	}
	policy, err := s.d.Registry.Authorize(r.Header.Get("Authorization"), need, s.d.Now())
	if err != nil {
		s.fail(w, r, err, fail)
		return "", false
	}
	return policy, true
}

// requestID echoes the caller's Request-Id (the service SDKs send a UUID)
// when it is a plain token, else makes a UUID v4.
func requestID(r *http.Request) string {
	if id := r.Header.Get("Request-Id"); id != "" && len(id) <= 128 && plainToken(id) {
		return id
	}
	return newUUID()
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func plainToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:|", c) >= 0) {
			return false
		}
	}
	return true
}

// writeJSON writes v with the content type the service SDKs require to
// parse a body at all (azure-sdk-wire §6).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
