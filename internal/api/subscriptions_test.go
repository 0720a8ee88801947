package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/api/apitest"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
)

const subBody = `{"name":"ops-alerts","destination":{"endpointType":"WebHook","properties":{"endpointUrl":"https://ops.example.com/hook"}},
	"filter":{"includedEventTypes":["Microsoft.Devices.DeviceDisconnected"],
	"advancedFilters":[{"operatorType":"StringIn","key":"data.tether.reason","values":["network","keep-alive"]}]},
	"tether":{"suppressRenewals":true}}`

func subEnv(t *testing.T, with func(*api.Deps)) (*env, *apitest.Subscriptions) {
	t.Helper()
	subs := apitest.NewSubscriptions()
	e := newEnv(t, func(d *api.Deps) {
		d.Subscriptions = subs
		if with != nil {
			with(d)
		}
	})
	return e, subs
}

func TestSubscriptionsCRUD(t *testing.T) {
	e, subs := subEnv(t, nil)

	// create
	w := e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: subBody})
	if w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	wantJSON(t, w)
	if loc := w.Header().Get("Location"); loc != "/api/v1/subscriptions/ops-alerts" {
		t.Errorf("Location %q", loc)
	}
	etag := w.Header().Get("ETag")
	if etag == "" || etag[0] != '"' {
		t.Fatalf("ETag %q", etag)
	}
	got := decode[events.Subscription](t, w)
	if got.Name != "ops-alerts" || got.ProvisioningState != events.Succeeded || got.RetryPolicy.MaxDeliveryAttempts != 30 ||
		got.Tether.RenewalGraceSeconds != 120 || !got.Tether.SuppressRenewals || got.Validation == nil || got.Validation.ValidatedAt.IsZero() {
		t.Fatalf("created %+v", got)
	}
	if subs.Handshakes() != 1 {
		t.Fatalf("%d handshakes", subs.Handshakes())
	}

	// create again, in another case: 409
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: strings.Replace(subBody, "ops-alerts", "OPS-Alerts", 1)})
	if code, msg := v1Code(t, w); w.Code != 409 || code != api.CodeSubscriptionAlreadyExists || !strings.Contains(msg, "OPS-Alerts") {
		t.Fatalf("create existing: %d %s %s", w.Code, code, msg)
	}

	// list and show
	e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":"all-events","destination":{"properties":{"endpointUrl":"http://127.0.0.1:9/x"}}}`})
	w = e.do(req{Method: "GET", Path: "/api/v1/subscriptions"})
	list := decode[api.SubscriptionList](t, w)
	if w.Code != 200 || len(list.Subscriptions) != 2 || list.Subscriptions[0].Name != "all-events" || list.Subscriptions[1].Name != "ops-alerts" {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "GET", Path: "/api/v1/subscriptions/OPS-ALERTS"})
	if w.Code != 200 || decode[events.Subscription](t, w).Name != "ops-alerts" || w.Header().Get("ETag") != etag {
		t.Fatalf("show: %d %s etag %q want %q", w.Code, w.Body, w.Header().Get("ETag"), etag)
	}
	for _, p := range []string{"/api/v1/subscriptions/ghost-sub", "/api/v1/subscriptions/no", "/api/v1/subscriptions/a%2Fb"} {
		w = e.do(req{Method: "GET", Path: p})
		if code, _ := v1Code(t, w); w.Code != 404 || code != api.CodeSubscriptionNotFound {
			t.Fatalf("show %s: %d %s", p, w.Code, code)
		}
	}

	// update: a round trip of what GET served, changed, conditional on
	// the ETag; the endpoint is unchanged, so no new handshake
	cur := decode[events.Subscription](t, e.do(req{Method: "GET", Path: "/api/v1/subscriptions/ops-alerts"}))
	cur.RetryPolicy.MaxDeliveryAttempts = 5
	body, _ := json.Marshal(cur)
	w = e.do(req{Method: "PUT", Path: "/api/v1/subscriptions/ops-alerts", Body: string(body), Header: map[string]string{"If-Match": etag}})
	if w.Code != 200 {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	upd := decode[events.Subscription](t, w)
	newTag := w.Header().Get("ETag")
	if upd.RetryPolicy.MaxDeliveryAttempts != 5 || upd.ProvisioningState != events.Succeeded || newTag == etag || subs.Handshakes() != 2 {
		t.Fatalf("updated %+v etag %s, %d handshakes", upd, newTag, subs.Handshakes())
	}
	// stale ETag, and one that is not ours
	for _, tag := range []string{etag, `"abc"`, "0"} {
		w = e.do(req{Method: "PUT", Path: "/api/v1/subscriptions/ops-alerts", Body: string(body), Header: map[string]string{"If-Match": tag}})
		if code, _ := v1Code(t, w); w.Code != 412 || code != "PreconditionFailed" {
			t.Fatalf("update with If-Match %s: %d %s", tag, w.Code, w.Body)
		}
	}
	// a body without a name takes the URL's; a new endpoint is validated again
	w = e.do(req{Method: "PUT", Path: "/api/v1/subscriptions/ops-alerts", Body: `{"destination":{"properties":{"endpointUrl":"https://new.example.com/hook"}}}`, Header: map[string]string{"If-Match": "W/" + newTag}})
	if w.Code != 200 || subs.Handshakes() != 3 {
		t.Fatalf("update without name: %d %s (%d handshakes)", w.Code, w.Body, subs.Handshakes())
	}
	if upd = decode[events.Subscription](t, w); upd.Name != "ops-alerts" || upd.Destination.Properties.EndpointURL != "https://new.example.com/hook" || upd.Tether.SuppressRenewals {
		t.Fatalf("replaced: %+v", upd)
	}
	// another name in the body
	w = e.do(req{Method: "PUT", Path: "/api/v1/subscriptions/ops-alerts", Body: `{"name":"other-name","destination":{"properties":{"endpointUrl":"https://x.example"}}}`})
	if w.Code != 400 || !strings.Contains(w.Body.String(), "does not match the name in the URL") {
		t.Fatalf("rename: %d %s", w.Code, w.Body)
	}
	// update of a missing subscription
	w = e.do(req{Method: "PUT", Path: "/api/v1/subscriptions/ghost-sub", Body: `{"destination":{"properties":{"endpointUrl":"https://x.example"}}}`})
	if code, _ := v1Code(t, w); w.Code != 404 || code != api.CodeSubscriptionNotFound {
		t.Fatalf("update missing: %d %s", w.Code, w.Body)
	}

	// delete: stale ETag, then for real
	w = e.do(req{Method: "DELETE", Path: "/api/v1/subscriptions/ops-alerts", Header: map[string]string{"If-Match": etag}})
	if w.Code != 412 {
		t.Fatalf("delete stale: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "DELETE", Path: "/api/v1/subscriptions/ops-alerts"})
	if w.Code != 204 || w.Body.Len() != 0 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "DELETE", Path: "/api/v1/subscriptions/ops-alerts"})
	if w.Code != 404 {
		t.Fatalf("delete again: %d %s", w.Code, w.Body)
	}

	// methods and paths
	for _, rq := range []req{
		{Method: "DELETE", Path: "/api/v1/subscriptions"},
		{Method: "POST", Path: "/api/v1/subscriptions/all-events"},
		{Method: "PUT", Path: "/api/v1/subscriptions/all-events/validate"},
		{Method: "POST", Path: "/api/v1/subscriptions/all-events/deadletters"},
		{Method: "GET", Path: "/api/v1/subscriptions/all-events/deadletters/replay"},
	} {
		if w := e.do(rq); w.Code != 405 || w.Header().Get("Allow") == "" {
			t.Errorf("%s %s: %d, Allow %q", rq.Method, rq.Path, w.Code, w.Header().Get("Allow"))
		}
	}
	for _, p := range []string{"/api/v1/subscriptions/all-events/nothing", "/api/v1/subscriptions//x", "/api/v1/subscriptionsx"} {
		if w := e.do(req{Method: "GET", Path: p}); w.Code != 404 {
			t.Errorf("GET %s: %d", p, w.Code)
		}
	}
	if w := e.do(req{Method: "GET", Path: "/api/v1/subscriptions?x=1"}); w.Code != 400 {
		t.Errorf("unknown parameter: %d", w.Code)
	}
}

func TestSubscriptionInvalidListsEveryError(t *testing.T) {
	e, subs := subEnv(t, nil)
	body := `{"name":"x","destination":{"properties":{"endpointUrl":"ftp://example.com","maxEventsPerBatch":6000}},
		"eventDeliverySchema":"CustomInputSchema",
		"retryPolicy":{"maxDeliveryAttempts":31,"eventTimeToLiveInMinutes":2000},
		"filter":{"includedEventTypes":["Microsoft.Devices.DeviceTwinChanged"],
		  "advancedFilters":[{"operatorType":"StringIn","key":"data.tether.reason","values":[5]},{"operatorType":"NumberFoo","key":"data.x"}]},
		"tether":{"renewalGraceSeconds":-1}}`
	w := e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: body})
	if w.Code != 400 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	wantJSON(t, w)
	b := decode[api.InvalidError](t, w)
	fields := map[string]bool{}
	for _, d := range b.Error.Details {
		fields[d.Field] = true
		if d.Message == "" {
			t.Errorf("no message for %s", d.Field)
		}
	}
	for _, f := range []string{
		"name", "destination.properties.endpointUrl", "destination.properties.maxEventsPerBatch", "eventDeliverySchema",
		"retryPolicy.maxDeliveryAttempts", "retryPolicy.eventTimeToLiveInMinutes", "tether.renewalGraceSeconds",
		"filter.includedEventTypes[0]", "filter.advancedFilters[0].values[0]", "filter.advancedFilters[1].operatorType",
	} {
		if !fields[f] {
			t.Errorf("no error for %s in %s", f, w.Body)
		}
	}
	if b.Error.Code != "ArgumentInvalid" || !strings.Contains(b.Error.Message, "problems") || len(b.Error.Details) < 10 {
		t.Errorf("error %s: %q, %d details", b.Error.Code, b.Error.Message, len(b.Error.Details))
	}
	if subs.Handshakes() != 0 {
		t.Fatal("an invalid subscription was handshaken")
	}

	// not JSON, unknown member, wrong content type, too big
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":`})
	if b := decode[api.InvalidError](t, w); w.Code != 400 || len(b.Error.Details) != 1 || !strings.Contains(b.Error.Details[0].Message, "not valid JSON") {
		t.Fatalf("not JSON: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":"abc","destinaton":{}}`})
	if w.Code != 400 || !strings.Contains(w.Body.String(), `unknown member \"destinaton\"`) || !strings.Contains(w.Body.String(), "endpointUrl") {
		t.Fatalf("unknown member: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: subBody, Header: map[string]string{"Content-Type": "text/plain"}})
	if w.Code != 415 {
		t.Fatalf("text/plain: %d", w.Code)
	}
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":"` + strings.Repeat("a", 2<<20) + `"}`})
	if w.Code != 413 {
		t.Fatalf("2 MiB: %d", w.Code)
	}
	// the hub's policy: plain http beyond loopback
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":"plain","destination":{"properties":{"endpointUrl":"http://recv.example/x"}}}`})
	if w.Code != 400 {
		t.Fatalf("http endpoint: %d", w.Code)
	}
	e, _ = subEnv(t, func(d *api.Deps) { d.SubscriptionPolicy.AllowHTTP = true })
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":"plain","destination":{"properties":{"endpointUrl":"http://recv.example/x"}}}`})
	if w.Code != 201 {
		t.Fatalf("http endpoint allowed: %d %s", w.Code, w.Body)
	}
}

func TestSubscriptionsAuth(t *testing.T) {
	e, _ := subEnv(t, nil)
	if w := e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: subBody}); w.Code != 201 {
		t.Fatal(w.Body)
	}
	paths := []req{
		{Method: "GET", Path: "/api/v1/subscriptions"},
		{Method: "POST", Path: "/api/v1/subscriptions", Body: subBody},
		{Method: "GET", Path: "/api/v1/subscriptions/ops-alerts"},
		{Method: "PUT", Path: "/api/v1/subscriptions/ops-alerts", Body: subBody},
		{Method: "DELETE", Path: "/api/v1/subscriptions/ops-alerts"},
		{Method: "GET", Path: "/api/v1/subscriptions/ops-alerts/deadletters"},
		{Method: "POST", Path: "/api/v1/subscriptions/ops-alerts/deadletters/replay", Body: `{"all":true}`},
		{Method: "GET", Path: "/api/v1/events"},
	}
	for _, auth := range []string{"-", e.token("registryReadWrite"), e.tokenUntil("iothubowner", time.Now().Add(-time.Minute))} {
		for _, rq := range paths {
			rq.Auth = auth
			w := e.do(rq)
			if code, _ := v1Code(t, w); w.Code != 401 || code != "IotHubUnauthorizedAccess" {
				t.Errorf("%s %s with %.20q: %d %s", rq.Method, rq.Path, auth, w.Code, code)
			}
		}
	}
	// the service policy has ServiceConnect
	if w := e.do(req{Method: "GET", Path: "/api/v1/subscriptions/ops-alerts", Auth: e.token("service")}); w.Code != 200 {
		t.Fatalf("service policy: %d %s", w.Code, w.Body)
	}
	// a hub without the service
	e = newEnv(t, nil)
	for _, rq := range append(paths[:7:7], req{Method: "GET", Path: "/api/v1/subscriptions/ops-alerts/validate?code=x", Auth: "-"}) {
		w := e.do(rq)
		if code, msg := v1Code(t, w); w.Code != 503 || code != "ServiceUnavailable" || !strings.Contains(msg, "event subscriptions") {
			t.Errorf("%s %s without service: %d %s", rq.Method, rq.Path, w.Code, w.Body)
		}
	}
}

func TestValidationCallback(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e, subs := subEnv(t, nil)
	subs.Now = func() time.Time { return clock() }
	const code = "3d5c9a1e-7f00-4b8e-9d2a-0c6f1e2b3a4d"
	subs.Handshake = apitest.AwaitManual(code, 5*time.Minute, events.ValidationURLFunc("https://hub.example"))

	w := e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: subBody})
	if w.Code != 201 || decode[events.Subscription](t, w).ProvisioningState != events.AwaitingManualAction {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	// the code is never served, nor the validation URL that holds it
	for _, p := range []string{"/api/v1/subscriptions", "/api/v1/subscriptions/ops-alerts"} {
		w := e.do(req{Method: "GET", Path: p})
		if strings.Contains(w.Body.String(), code) || strings.Contains(w.Body.String(), "validate?") {
			t.Fatalf("GET %s serves the code: %s", p, w.Body)
		}
	}
	if strings.Contains(w.Body.String(), code) {
		t.Fatalf("create serves the code: %s", w.Body)
	}
	if s := decode[events.Subscription](t, e.do(req{Method: "GET", Path: "/api/v1/subscriptions/ops-alerts"})); s.Validation == nil || s.Validation.ExpiresAt.IsZero() {
		t.Fatalf("validation state not shown: %+v", s.Validation)
	}

	validate := func(method, name, q string) *httptest.ResponseRecorder {
		return e.do(req{Method: method, Path: "/api/v1/subscriptions/" + name + "/validate" + q, Auth: "-"})
	}
	// a wrong code and an unknown subscription get the same answer
	for _, w := range []*httptest.ResponseRecorder{
		validate("GET", "ops-alerts", "?code=wrong"),
		validate("GET", "ghost-sub", "?code="+code),
		validate("POST", "x", "?code="+code),
	} {
		if c, msg := v1Code(t, w); w.Code != 403 || c != api.CodeValidationCodeInvalid || strings.Contains(w.Body.String(), code) {
			t.Fatalf("wrong code: %d %s %s", w.Code, c, msg)
		}
	}
	if w := validate("GET", "ops-alerts", ""); w.Code != 400 {
		t.Fatalf("no code: %d", w.Code)
	}
	if w := validate("GET", "ops-alerts", "?code=x&y=1"); w.Code != 400 {
		t.Fatalf("unknown parameter: %d", w.Code)
	}
	if s, _, _ := subs.Get(context.Background(), "ops-alerts"); s.ProvisioningState != events.AwaitingManualAction {
		t.Fatalf("state after wrong codes: %s", s.ProvisioningState)
	}

	// the right code, without a token, validates; opening it again is fine
	w = validate("GET", "OPS-ALERTS", "?code="+url.QueryEscape(code))
	res := decode[api.ValidationResult](t, w)
	if w.Code != 200 || res.Name != "ops-alerts" || res.ProvisioningState != events.Succeeded || res.Message == "" {
		t.Fatalf("validate: %d %s", w.Code, w.Body)
	}
	if w := validate("POST", "ops-alerts", "?code="+code); w.Code != 200 {
		t.Fatalf("validate again: %d %s", w.Code, w.Body)
	}
	if s, _, _ := subs.Get(context.Background(), "ops-alerts"); s.ProvisioningState != events.Succeeded || !s.Validation.Manual {
		t.Fatalf("stored: %+v", s)
	}
	// a validated subscription is not awaiting a code
	if w := validate("GET", "ops-alerts", "?code=other"); w.Code != 403 {
		t.Fatalf("other code after validation: %d", w.Code)
	}

	// too late: 410, and the subscription is Failed
	e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: strings.Replace(subBody, "ops-alerts", "late-sub", 1)})
	clock = func() time.Time { return now.Add(6 * time.Minute) }
	if w := validate("GET", "late-sub", "?code="+code); w.Code != 410 {
		t.Fatalf("late: %d %s", w.Code, w.Body)
	}
	if s, _, _ := subs.Get(context.Background(), "late-sub"); s.ProvisioningState != events.Failed {
		t.Fatalf("late state: %s", s.ProvisioningState)
	}
	// updating a Failed subscription validates it again
	subs.Handshake = nil
	w = e.do(req{Method: "PUT", Path: "/api/v1/subscriptions/late-sub", Body: strings.Replace(subBody, "ops-alerts", "late-sub", 1)})
	if s := decode[events.Subscription](t, w); w.Code != 200 || s.ProvisioningState != events.Succeeded {
		t.Fatalf("update of a failed subscription: %d %s", w.Code, w.Body)
	}
}

// TestManualValidationEndToEnd runs the real Handshaker against a receiver
// that accepts the validation event without the code and then opens the
// validation URL it was sent, as a person would, on the API server.
func TestManualValidationEndToEnd(t *testing.T) {
	subs := apitest.NewSubscriptions()
	var api1 *httptest.Server
	var mu sync.Mutex
	var sentURL string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var evs []struct {
			Data events.ValidationEventData `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&evs)
		if len(evs) == 1 {
			mu.Lock()
			sentURL = evs[0].Data.ValidationURL
			mu.Unlock()
		}
		w.WriteHeader(200) // no validationResponse: manual validation
	}))
	defer recv.Close()
	h := &events.Handshaker{ValidationURL: func(n, c string) string { return events.ValidationURLFunc(api1.URL)(n, c) }}
	subs.Handshake = h.Handshake
	e := newEnv(t, func(d *api.Deps) { d.Subscriptions = subs })
	api1 = httptest.NewServer(e.srv)
	defer api1.Close()

	w := e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":"manual-1","destination":{"properties":{"endpointUrl":"` + recv.URL + `/hook"}}}`})
	if s := decode[events.Subscription](t, w); w.Code != 201 || s.ProvisioningState != events.AwaitingManualAction {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	mu.Lock()
	u := sentURL
	mu.Unlock()
	if !strings.HasPrefix(u, api1.URL+"/api/v1/subscriptions/manual-1/validate?code=") {
		t.Fatalf("validation URL %q", u)
	}
	resp, err := http.Get(u) // no token
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"provisioningState":"Succeeded"`) {
		t.Fatalf("opening the validation URL: %d %s", resp.StatusCode, body)
	}
	if s, _, _ := subs.Get(context.Background(), "manual-1"); !s.Active() {
		t.Fatalf("not active: %+v", s)
	}
}

func deadLetter(t *testing.T, seq string, reason string) events.DeadLetter {
	t.Helper()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev, ok := events.FromConnection(events.Resource{}, presence.ConnectionEvent{
		ID: "dev1/" + seq, Kind: presence.Disconnected, Time: at, Hub: hub, DeviceID: "dev1", Sequence: seq,
		Reason: presence.ReasonNetwork, Result: presence.ResultClosedRemotely,
	}, events.Marks{})
	if !ok {
		t.Fatal("no event")
	}
	return events.DeadLetter{Event: ev, Reason: reason, DeliveryAttempts: 3, LastDeliveryOutcome: "NotFound", LastHTTPStatus: 404,
		LastError: "404 Not Found", PublishTime: at, LastDeliveryAttemptTime: at.Add(time.Minute)}
}

func TestDeadLetters(t *testing.T) {
	e, subs := subEnv(t, nil)
	e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: subBody})
	e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":"ce-sub","eventDeliverySchema":"CloudEventSchemaV1_0","destination":{"properties":{"endpointUrl":"https://x.example"}}}`})
	d1 := deadLetter(t, strings.Repeat("0", 63)+"1", events.DeadLetterNonRetriable)
	d2 := deadLetter(t, strings.Repeat("0", 63)+"2", events.DeadLetterMaxAttempts)
	d3 := deadLetter(t, strings.Repeat("0", 63)+"3", events.DeadLetterTTL)
	subs.AddDeadLetters("ops-alerts", d1, d2, d3)
	subs.AddDeadLetters("ce-sub", d1)

	w := e.do(req{Method: "GET", Path: "/api/v1/subscriptions/ops-alerts/deadletters"})
	if w.Code != 200 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	type rawList struct {
		Name                string
		EventDeliverySchema string
		DeadLetters         []map[string]any
	}
	list := decode[rawList](t, w)
	if list.Name != "ops-alerts" || list.EventDeliverySchema != "EventGridSchema" || len(list.DeadLetters) != 3 {
		t.Fatalf("list: %s", w.Body)
	}
	first := list.DeadLetters[0]
	if first["id"] != d1.Event.ID || first["eventType"] != "Microsoft.Devices.DeviceDisconnected" || first["deadLetterReason"] != "NonRetriableHttpStatus" ||
		first["deliveryAttempts"] != 3.0 || first["lastHttpStatusCode"] != 404.0 || first["lastDeliveryOutcome"] != "NotFound" {
		t.Fatalf("first dead letter: %v", first)
	}
	w = e.do(req{Method: "GET", Path: "/api/v1/subscriptions/ops-alerts/deadletters?limit=2"})
	if n := len(decode[api.DeadLetterList](t, w).DeadLetters); n != 2 {
		t.Fatalf("limit 2: %d", n)
	}
	w = e.do(req{Method: "GET", Path: "/api/v1/subscriptions/ce-sub/deadletters"})
	if !strings.Contains(w.Body.String(), `"deadletterreason":"NonRetriableHttpStatus"`) || !strings.Contains(w.Body.String(), `"specversion":"1.0"`) {
		t.Fatalf("CloudEvents dead letters: %s", w.Body)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?lmit=1"} {
		if w := e.do(req{Method: "GET", Path: "/api/v1/subscriptions/ops-alerts/deadletters" + q}); w.Code != 400 {
			t.Errorf("%s: %d", q, w.Code)
		}
	}
	if w := e.do(req{Method: "GET", Path: "/api/v1/subscriptions/ghost-sub/deadletters"}); w.Code != 404 {
		t.Fatalf("missing subscription: %d", w.Code)
	}

	// replay by id: one known, one not
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions/ops-alerts/deadletters/replay", Body: `{"ids":["` + d2.Event.ID + `","nope","nope"]}`})
	res := decode[api.ReplayResult](t, w)
	if w.Code != 200 || res.Replayed != 1 || len(res.NotFound) != 1 || res.NotFound[0] != "nope" {
		t.Fatalf("replay ids: %d %s", w.Code, w.Body)
	}
	if r := subs.Replayed("ops-alerts"); len(r) != 1 || r[0].Event.ID != d2.Event.ID {
		t.Fatalf("replayed %+v", r)
	}
	// replay all
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions/ops-alerts/deadletters/replay", Body: `{"all":true}`})
	if res := decode[api.ReplayResult](t, w); w.Code != 200 || res.Replayed != 2 || !strings.Contains(w.Body.String(), `"notFound":[]`) {
		t.Fatalf("replay all: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "GET", Path: "/api/v1/subscriptions/ops-alerts/deadletters"})
	if strings.TrimSpace(w.Body.String()) != `{"name":"ops-alerts","eventDeliverySchema":"EventGridSchema","deadLetters":[]}` {
		t.Fatalf("after replay: %s", w.Body)
	}
	// bad requests
	for _, body := range []string{`{}`, `{"ids":[]}`, `{"all":true,"ids":["a"]}`, `{"all":false}`, `{"ids":[""]}`, `{"id":["a"]}`, `[]`, `{"all":true} x`} {
		w := e.do(req{Method: "POST", Path: "/api/v1/subscriptions/ops-alerts/deadletters/replay", Body: body})
		if code, _ := v1Code(t, w); w.Code != 400 || code != "ArgumentInvalid" {
			t.Errorf("replay %s: %d %s", body, w.Code, w.Body)
		}
	}
	if w := e.do(req{Method: "POST", Path: "/api/v1/subscriptions/ghost-sub/deadletters/replay", Body: `{"all":true}`}); w.Code != 404 {
		t.Fatalf("replay of missing subscription: %d", w.Code)
	}
}

// Stream, command and e-mail subscriptions go through the same endpoints;
// a PUT without a name takes the URL's (and the defaults derived from
// it); kinds the hub does not serve are refused with why.
func TestSubscriptionDestinationKinds(t *testing.T) {
	e, _ := subEnv(t, func(d *api.Deps) {
		d.SubscriptionPolicy.Unavailable = map[string]string{events.EndpointCommand: "it runs no commands"}
	})
	w := e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":"to-stream","destination":{"endpointType":"Stream","properties":{"retentionInHours":24}}}`})
	got := decode[events.Subscription](t, w)
	if w.Code != 201 || got.Destination.Properties.StreamName != "EVENTS_TO_STREAM" || got.ProvisioningState != events.Succeeded ||
		got.Validation.Method != events.MethodStream {
		t.Fatalf("stream: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "PUT", Path: "/api/v1/subscriptions/mail-ops", Body: `{"destination":{"endpointType":"Email","properties":{"to":["ops@example.com"],"digestWindowInSeconds":60}}}`})
	if w.Code != 404 {
		t.Fatalf("PUT of a missing subscription: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":"mail-ops","destination":{"endpointType":"Email","properties":{"to":["ops@example.com"]}}}`})
	if w.Code != 201 {
		t.Fatalf("email: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "PUT", Path: "/api/v1/subscriptions/to-stream", Body: `{"destination":{"endpointType":"Stream"}}`})
	if got := decode[events.Subscription](t, w); w.Code != 200 || got.Name != "to-stream" || got.Destination.Properties.SubjectPrefix != "events.to-stream" {
		t.Fatalf("PUT without name: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: `{"name":"run-it","destination":{"endpointType":"Command","properties":{"command":["x.sh"],"to":["a@b.c"]}}}`})
	inv := decode[api.InvalidError](t, w)
	if w.Code != 400 || len(inv.Error.Details) != 2 || inv.Error.Details[0].Field != "destination.endpointType" ||
		!strings.Contains(inv.Error.Details[0].Message, "not available on this hub: it runs no commands") ||
		inv.Error.Details[1].Field != "destination.properties.to" {
		t.Fatalf("command: %d %s", w.Code, w.Body)
	}
}

// GET /status answers the figures and the delivery log's last attempts.
func TestSubscriptionStatus(t *testing.T) {
	e, subs := subEnv(t, nil)
	e.do(req{Method: "POST", Path: "/api/v1/subscriptions", Body: subBody})
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	subs.SetStatus("ops-alerts", events.DeliveryStatus{EndpointType: "WebHook", Running: true, Delivered: 7, Retrying: 1, LastError: "endpoint answered 503", LastErrorTime: at},
		events.DeliveryAttempt{Time: at, Attempt: 2, Events: 1, Outcome: "ServiceUnavailable"}, events.DeliveryAttempt{Time: at, OK: true})
	w := e.do(req{Method: "GET", Path: "/api/v1/subscriptions/OPS-ALERTS/status?deliveries=1"})
	st := decode[api.SubscriptionStatus](t, w)
	if w.Code != 200 || st.Name != "ops-alerts" || st.ProvisioningState != events.Succeeded || st.Delivery.Delivered != 7 ||
		st.Delivery.LastError != "endpoint answered 503" || len(st.Deliveries) != 1 || st.Deliveries[0].Outcome != "ServiceUnavailable" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if !strings.Contains(w.Body.String(), `"retrying":1`) || !strings.Contains(w.Body.String(), `"lastErrorTime":"2026-03-01T12:00:00Z"`) {
		t.Errorf("wire form %s", w.Body)
	}
	for path, code := range map[string]int{
		"/api/v1/subscriptions/ops-alerts/status?deliveries=0": 400,
		"/api/v1/subscriptions/ops-alerts/status?other=1":      400,
		"/api/v1/subscriptions/ghost-sub/status":               404,
	} {
		if w := e.do(req{Method: "GET", Path: path}); w.Code != code {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
	}
	if w := e.do(req{Method: "POST", Path: "/api/v1/subscriptions/ops-alerts/status"}); w.Code != 405 {
		t.Errorf("POST: %d", w.Code)
	}
}
