package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
	"github.com/tether-hub/tether/internal/sas"
)

const hub = "hub.example"

// env is an API server on a real Registry (memstore) holding dev1.
type env struct {
	t    *testing.T
	reg  *registry.Registry
	srv  *api.Server
	dev1 registry.Device
}

func newEnv(t *testing.T, with func(*api.Deps)) *env {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.New(ctx, memstore.New(), registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	dev1, err := reg.Create(ctx, registry.Device{DeviceID: "dev1"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	// Test receivers listen on loopback, as on a dev hub.
	deps := api.Deps{Registry: reg, HubName: hub,
		SubscriptionPolicy: events.ValidateOptions{Endpoints: events.EndpointPolicy{AllowLoopback: true}}}
	if with != nil {
		with(&deps)
	}
	return &env{t: t, reg: reg, srv: api.New(deps), dev1: dev1}
}

// token signs a service token of the named policy, valid for an hour.
func (e *env) token(policy string) string {
	return e.tokenUntil(policy, time.Now().Add(time.Hour))
}

func (e *env) tokenUntil(policy string, exp time.Time) string {
	e.t.Helper()
	p, ok := e.reg.Policy(policy)
	if !ok {
		e.t.Fatalf("no policy %s", policy)
	}
	tok, err := sas.Sign(hub, p.PrimaryKey, p.Name, exp)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// req describes one request; Auth "" means the owner policy, "-" none.
type req struct {
	Method, Path, Body string
	Auth               string
	Header             map[string]string
}

func (e *env) do(rq req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if rq.Body != "" {
		body = strings.NewReader(rq.Body)
	}
	r := httptest.NewRequest(rq.Method, rq.Path, body)
	switch rq.Auth {
	case "":
		r.Header.Set("Authorization", e.token("iothubowner"))
	case "-":
	default:
		r.Header.Set("Authorization", rq.Auth)
	}
	if rq.Body != "" {
		r.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	for k, v := range rq.Header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// azureCode extracts the ErrorCode of an IoT Hub error body.
func azureCode(t *testing.T, w *httptest.ResponseRecorder) (code, msg string) {
	t.Helper()
	var b struct{ Message, ExceptionMessage string }
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q is not JSON: %v", w.Body.String(), err)
	}
	rest, ok := strings.CutPrefix(b.Message, "ErrorCode:")
	if !ok {
		t.Fatalf("Message %q does not start with ErrorCode:", b.Message)
	}
	code, msg, _ = strings.Cut(rest, ";")
	if b.ExceptionMessage == "" {
		t.Errorf("no ExceptionMessage in %s", w.Body.String())
	}
	return code, msg
}

// v1Code extracts code and message of a Tether error body.
func v1Code(t *testing.T, w *httptest.ResponseRecorder) (code, msg string) {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error.Code == "" {
		t.Fatalf("error body %q is not {\"error\":{…}}: %v", w.Body.String(), err)
	}
	return b.Error.Code, b.Error.Message
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return v
}

func wantJSON(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
}

var _ http.Handler = (*api.Server)(nil)
