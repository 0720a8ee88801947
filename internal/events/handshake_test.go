package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is a fake webhook endpoint on 127.0.0.1 that records requests.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func newReceiver(t *testing.T, h func(w http.ResponseWriter, r *http.Request, body []byte)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, r.Clone(context.Background()))
		rc.body = append(rc.body, b)
		rc.mu.Unlock()
		h(w, r, b)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) last(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(rc.reqs))
	}
	return rc.reqs[0], rc.body[0]
}

var hsNow = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

func handshaker() *Handshaker {
	return &Handshaker{
		Timeout:       2 * time.Second,
		ValidationURL: ValidationURLFunc("https://hub.example:8443/"),
		Origin:        "hub.example",
		Topic:         testResource.ID(testHub),
		Now:           func() time.Time { return hsNow },
		NewCode:       func() string { return "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" },
	}
}

func subFor(url string, schema Schema) Subscription {
	s := Subscription{Name: "ops-alerts", EventDeliverySchema: schema,
		Destination: Destination{Properties: DestinationProperties{EndpointURL: url}}}
	s.ApplyDefaults()
	return s
}

// echo answers like a receiver that implements the handshake.
func echo(member string) func(w http.ResponseWriter, r *http.Request, body []byte) {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		var evs []struct {
			Data ValidationEventData `json:"data"`
		}
		if json.Unmarshal(body, &evs) != nil || len(evs) != 1 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"`+member+`": "`+evs[0].Data.ValidationCode+`"}`)
	}
}

func TestValidationEventSuccess(t *testing.T) {
	rc := newReceiver(t, echo("validationResponse"))
	s, err := handshaker().Handshake(context.Background(), subFor(rc.URL+"/hook", EventGridSchema))
	if err != nil || s.ProvisioningState != Succeeded || !s.Active() {
		t.Fatalf("%v %s", err, s.ProvisioningState)
	}
	v := s.Validation
	if v.Method != MethodValidationEvent || !v.ValidatedAt.Equal(hsNow) || v.Manual || v.Endpoint != rc.URL+"/hook" || s.NeedsHandshake() {
		t.Errorf("%+v", v)
	}
	r, body := rc.last(t)
	if r.Method != http.MethodPost || r.URL.Path != "/hook" {
		t.Errorf("%s %s", r.Method, r.URL)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json; charset=utf-8", "aeg-event-type": "SubscriptionValidation",
		"aeg-subscription-name": "OPS-ALERTS", "aeg-delivery-count": "0", "aeg-data-version": "1", "aeg-metadata-version": "1",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	// The body is an array with exactly the validation event.
	var evs []map[string]any
	if err := json.Unmarshal(body, &evs); err != nil || len(evs) != 1 {
		t.Fatalf("%s %v", body, err)
	}
	ev := evs[0]
	data, _ := ev["data"].(map[string]any)
	if ev["eventType"] != "Microsoft.EventGrid.SubscriptionValidationEvent" || ev["subject"] != "" ||
		ev["topic"] != testResource.ID(testHub) || ev["metadataVersion"] != "1" || ev["dataVersion"] != "1" ||
		ev["eventTime"] != "2026-05-06T07:08:09.0000000Z" || data["validationCode"] != "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" ||
		data["validationUrl"] != "https://hub.example:8443/api/v1/subscriptions/ops-alerts/validate?code=512d38b6-c7b8-40c8-89fe-f46f9e9622b6" {
		t.Errorf("validation event %s", body)
	}
	golden(t, "handshake/validation-event.json", json.RawMessage(normalizeID(body)))
}

// normalizeID replaces the random event id for the golden file, keeping
// the members in the order they were sent.
func normalizeID(body []byte) []byte {
	var evs []struct{ ID string }
	_ = json.Unmarshal(body, &evs)
	return bytes.Replace(body, []byte(evs[0].ID), []byte("RANDOM-UUID"), 1)
}

func TestValidationEventPascalCase(t *testing.T) {
	rc := newReceiver(t, echo("ValidationResponse"))
	s, err := handshaker().Handshake(context.Background(), subFor(rc.URL, EventGridSchema))
	if err != nil || s.ProvisioningState != Succeeded {
		t.Fatalf("%v %s", err, s.ProvisioningState)
	}
}

func TestValidationEventFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h       func(w http.ResponseWriter, r *http.Request, body []byte)
		noURL   bool
		errPart string
	}{
		{"wrong code", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			_, _ = io.WriteString(w, `{"validationResponse": "not-the-code"}`)
		}, false, "not the validation code"},
		{"202 with the code", func(w http.ResponseWriter, r *http.Request, b []byte) {
			w.WriteHeader(http.StatusAccepted)
			echo("validationResponse")(w, r, b)
		}, false, "202 Accepted"},
		{"500", func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(http.StatusInternalServerError) }, false, "500"},
		{"404", func(w http.ResponseWriter, r *http.Request, _ []byte) { http.NotFound(w, r) }, false, "404"},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, false, "307"},
		{"200 without code, no manual validation", func(w http.ResponseWriter, _ *http.Request, _ []byte) {}, true, "manual validation is not available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.h)
			h := handshaker()
			if tc.noURL {
				h.ValidationURL = nil
			}
			s, err := h.Handshake(context.Background(), subFor(rc.URL, EventGridSchema))
			if !errors.Is(err, ErrValidationFailed) || s.ProvisioningState != Failed || s.Active() {
				t.Fatalf("%v %s", err, s.ProvisioningState)
			}
			if !strings.Contains(err.Error(), tc.errPart) || s.Validation.Error == "" || !strings.Contains(err.Error(), s.Validation.Error) {
				t.Errorf("error %q (state %q), want it to mention %q", err, s.Validation.Error, tc.errPart)
			}
		})
	}
}

func TestValidationTimeout(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	h := handshaker()
	h.Timeout = 50 * time.Millisecond
	start := time.Now()
	s, err := h.Handshake(context.Background(), subFor(rc.URL, EventGridSchema))
	if !errors.Is(err, ErrValidationFailed) || s.ProvisioningState != Failed || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("%v %s", err, s.ProvisioningState)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	// The same for the CloudEvents handshake.
	s, err = h.Handshake(context.Background(), subFor(rc.URL, CloudEventSchemaV1_0))
	if !errors.Is(err, ErrValidationFailed) || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("%v %s", err, s.ProvisioningState)
	}
}

func TestValidationUnreachable(t *testing.T) {
	rc := newReceiver(t, func(http.ResponseWriter, *http.Request, []byte) {})
	url := rc.URL
	rc.Close()
	s, err := handshaker().Handshake(context.Background(), subFor(url, EventGridSchema))
	if !errors.Is(err, ErrValidationFailed) || s.ProvisioningState != Failed {
		t.Fatalf("%v %s", err, s.ProvisioningState)
	}
}

func TestManualValidation(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(http.StatusOK) })
	s, err := handshaker().Handshake(context.Background(), subFor(rc.URL, EventGridSchema))
	if err != nil || s.ProvisioningState != AwaitingManualAction || s.Active() {
		t.Fatalf("%v %s", err, s.ProvisioningState)
	}
	if !s.Validation.ExpiresAt.Equal(hsNow.Add(5 * time.Minute)) {
		t.Errorf("expires %v", s.Validation.ExpiresAt)
	}
	code := s.Validation.Code

	if got, err := ConfirmValidation(s, "wrong", hsNow.Add(time.Minute)); !errors.Is(err, ErrValidationCode) || got.ProvisioningState != AwaitingManualAction {
		t.Errorf("wrong code: %v %s", err, got.ProvisioningState)
	}
	if got, changed := ExpireValidation(s, hsNow.Add(5*time.Minute)); changed || got.ProvisioningState != AwaitingManualAction {
		t.Error("expired at the deadline itself")
	}
	ok, err := ConfirmValidation(s, code, hsNow.Add(time.Minute))
	if err != nil || ok.ProvisioningState != Succeeded || !ok.Validation.Manual || !ok.Validation.ValidatedAt.Equal(hsNow.Add(time.Minute)) {
		t.Fatalf("confirm: %v %+v", err, ok.Validation)
	}
	if s.ProvisioningState != AwaitingManualAction || s.Validation.Manual {
		t.Error("ConfirmValidation changed its argument")
	}
	if again, err := ConfirmValidation(ok, code, hsNow.Add(2*time.Minute)); err != nil || again.ProvisioningState != Succeeded {
		t.Errorf("second GET: %v", err)
	}
	late, err := ConfirmValidation(s, code, hsNow.Add(6*time.Minute))
	if !errors.Is(err, ErrValidationExpired) || late.ProvisioningState != Failed {
		t.Errorf("late: %v %s", err, late.ProvisioningState)
	}
	exp, changed := ExpireValidation(s, hsNow.Add(6*time.Minute))
	if !changed || exp.ProvisioningState != Failed || exp.Validation.Error == "" {
		t.Errorf("expire: %v %+v", changed, exp)
	}
	if _, err := ConfirmValidation(exp, code, hsNow.Add(7*time.Minute)); !errors.Is(err, ErrNotAwaitingValidation) {
		t.Errorf("confirm after failure: %v", err)
	}
	if _, err := ConfirmValidation(validSub(), code, hsNow); !errors.Is(err, ErrNotAwaitingValidation) {
		t.Errorf("confirm without handshake: %v", err)
	}
}

// An endpoint that validates asynchronously: it answers 200 at once and
// GETs the validationUrl a moment later, as a Zapier-like service would.
func TestAsyncValidation(t *testing.T) {
	var (
		mu  sync.Mutex
		sub Subscription
	)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/api/v1/subscriptions/"+sub.Name+"/validate" {
			http.NotFound(w, r)
			return
		}
		var err error
		sub, err = ConfirmValidation(sub, r.URL.Query().Get("code"), time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	defer hub.Close()
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, body []byte) {
		var evs []struct {
			Data ValidationEventData `json:"data"`
		}
		_ = json.Unmarshal(body, &evs)
		go func() {
			time.Sleep(20 * time.Millisecond) // after the handshake answer
			resp, err := http.Get(evs[0].Data.ValidationURL)
			if err == nil {
				resp.Body.Close()
			}
		}()
	})
	h := handshaker()
	h.Now = time.Now
	h.NewCode = nil
	h.ValidationURL = ValidationURLFunc(hub.URL)
	mu.Lock()
	var err error
	s := subFor(rc.URL, EventGridSchema)
	sub, err = h.Handshake(context.Background(), s)
	state := sub.ProvisioningState
	mu.Unlock()
	if err != nil || state != AwaitingManualAction {
		t.Fatalf("%v %s", err, state)
	}
	eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return sub.ProvisioningState == Succeeded && sub.Validation.Manual
	})
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAbuseProtection(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		allow    string
		rate     string
		noURL    bool
		want     ProvisioningState
		errPart  string
		wantRate string
		wantNoCB bool
	}{
		{name: "origin echoed", status: 200, allow: "hub.example", rate: "120", want: Succeeded, wantRate: "120"},
		{name: "origin in other case", status: 200, allow: "HUB.example", want: Succeeded},
		{name: "any origin", status: 200, allow: "*", rate: "*", want: Succeeded, wantRate: "*"},
		{name: "204 with origin", status: 204, allow: "*", want: Succeeded},
		{name: "other origin", status: 200, allow: "eventgrid.azure.net", want: Failed, errPart: `allows origin "eventgrid.azure.net"`},
		{name: "405", status: 405, want: Failed, errPart: "405"},
		{name: "403 with origin", status: 403, allow: "*", want: Failed, errPart: "403"},
		{name: "no header: callback", status: 200, want: AwaitingManualAction},
		{name: "no header, no callback", status: 200, noURL: true, want: Failed, errPart: "callback validation is not available", wantNoCB: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				if tc.allow != "" {
					w.Header().Set("WebHook-Allowed-Origin", tc.allow)
				}
				if tc.rate != "" {
					w.Header().Set("WebHook-Allowed-Rate", tc.rate)
				}
				w.Header().Set("Allow", "POST, OPTIONS")
				w.WriteHeader(tc.status)
			})
			h := handshaker()
			if tc.noURL {
				h.ValidationURL = nil
			}
			s, err := h.Handshake(context.Background(), subFor(rc.URL+"/ce", CloudEventSchemaV1_0))
			if s.ProvisioningState != tc.want || (err != nil) != (tc.want == Failed) {
				t.Fatalf("%v %s", err, s.ProvisioningState)
			}
			if tc.errPart != "" && !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("error %q, want %q", err, tc.errPart)
			}
			if s.Validation.Method != MethodAbuseProtection || s.Validation.AllowedRate != tc.wantRate {
				t.Errorf("%+v", s.Validation)
			}
			r, body := rc.last(t)
			if r.Method != http.MethodOptions || r.URL.Path != "/ce" || len(body) != 0 {
				t.Errorf("%s %s %q", r.Method, r.URL, body)
			}
			if got := r.Header.Get("WebHook-Request-Origin"); got != "hub.example" {
				t.Errorf("origin %q", got)
			}
			cb := r.Header.Get("WebHook-Request-Callback")
			if tc.wantNoCB != (cb == "") {
				t.Errorf("callback %q", cb)
			}
			if cb != "" {
				u, err := url.Parse(cb)
				if err != nil || u.Query().Get("code") != s.Validation.Code {
					t.Errorf("callback %q does not carry the code", cb)
				}
			}
			if tc.want == AwaitingManualAction {
				ok, err := ConfirmValidation(s, s.Validation.Code, hsNow.Add(time.Second))
				if err != nil || ok.ProvisioningState != Succeeded {
					t.Errorf("callback confirm: %v", err)
				}
			}
		})
	}
}

func TestNeedsHandshake(t *testing.T) {
	rc := newReceiver(t, echo("validationResponse"))
	s, err := handshaker().Handshake(context.Background(), subFor(rc.URL, EventGridSchema))
	if err != nil || s.NeedsHandshake() {
		t.Fatal(err)
	}
	moved := s
	moved.Destination.Properties.EndpointURL = rc.URL + "/other"
	other := s
	other.EventDeliverySchema = CloudEventSchemaV1_0
	if !moved.NeedsHandshake() || !other.NeedsHandshake() || !validSub().NeedsHandshake() {
		t.Error("endpoint or schema change not noticed")
	}
}
