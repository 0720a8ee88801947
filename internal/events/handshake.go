package events

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Handshake errors (wrapped by the errors Validate and ConfirmValidation
// return).
var (
	// ErrValidationFailed: the endpoint did not prove it wants the events.
	ErrValidationFailed = errors.New("endpoint validation failed")
	// ErrValidationCode: a manual validation named the wrong code.
	ErrValidationCode = errors.New("wrong validation code")
	// ErrValidationExpired: manual validation came after its deadline.
	ErrValidationExpired = errors.New("manual validation expired")
	// ErrNotAwaitingValidation: the subscription is not waiting for manual
	// validation.
	ErrNotAwaitingValidation = errors.New("subscription is not awaiting manual validation")
)

// Handshake defaults (reference/iothub-facts.md §1.9, EG-WH).
const (
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultManualWindow     = 5 * time.Minute
	DefaultOrigin           = "tether"
	// maxHandshakeBody bounds how much of a response is read.
	maxHandshakeBody = 64 << 10
)

// Handshake header names.
const (
	HeaderEventType               = "aeg-event-type"
	HeaderSubscriptionName        = "aeg-subscription-name"
	HeaderDeliveryCount           = "aeg-delivery-count"
	HeaderDataVersion             = "aeg-data-version"
	HeaderMetadataVersion         = "aeg-metadata-version"
	HeaderWebHookOrigin           = "WebHook-Request-Origin"
	HeaderWebHookCallback         = "WebHook-Request-Callback"
	HeaderWebHookAllowOrigin      = "WebHook-Allowed-Origin"
	HeaderWebHookAllowedRate      = "WebHook-Allowed-Rate"
	EventTypeValidation           = "SubscriptionValidation"
	EventTypeNotification         = "Notification"
	EventTypeSubscriptionDeletion = "SubscriptionDeletion"
)

// Handshaker proves that a subscription's endpoint wants its events,
// before anything is delivered to it.
//
// Event Grid schema (SubscriptionValidationEvent, EG-WH): one POST of a
// one-event array with header aeg-event-type: SubscriptionValidation and
// data {validationCode, validationUrl}. The endpoint proves ownership by
// answering 200 with {"validationResponse": "<code>"} (the member name is
// matched without regard to case, as .NET receivers often write
// "ValidationResponse"): the subscription is Succeeded. A 200 without a
// code puts it in AwaitingManualAction until someone opens validationUrl
// (ConfirmValidation), for ManualWindow. A 200 with another code, any
// other status (202 included: Event Grid does not accept it), a redirect,
// an error or no answer within Timeout make it Failed.
//
// CloudEvents schema (CloudEvents HTTP webhook spec §4, abuse protection):
// one OPTIONS with WebHook-Request-Origin (Origin) and, when a validation
// URL is available, WebHook-Request-Callback. A 2xx answer with
// WebHook-Allowed-Origin equal to Origin (case ignored) or "*" is consent
// (WebHook-Allowed-Rate is recorded); a 2xx without it means the target
// grants permission by calling back (AwaitingManualAction; the callback
// may be a GET or a POST); anything else is Failed. The spec allows any
// status with the header; Tether asks for 2xx, as Event Grid documents
// 200.
//
// Nothing is retried: Event Grid "may" retry a failed handshake after 5 s;
// Tether reports the failure in the subscription's state and validates
// again when the subscription is updated.
type Handshaker struct {
	// Client sends the requests. nil: a client that does not follow
	// redirects (a redirect is an answer other than 200).
	Client *http.Client
	// Endpoints, with Client nil, is checked on every connection the
	// handshake dials (EndpointPolicy.Control); nil: no check (the hub
	// always sets it).
	Endpoints *EndpointPolicy
	policy    struct {
		once   sync.Once
		client *http.Client
	}
	// Timeout bounds each request; default 30 s, as Event Grid.
	Timeout time.Duration
	// ValidationURL returns the hub URL that validates subscription name
	// when opened with code (validationUrl / WebHook-Request-Callback),
	// e.g. ValidationURLFunc("https://hub.example:8443"). nil: no manual
	// validation; an endpoint that does not validate synchronously fails.
	ValidationURL func(name, code string) string
	// Origin is WebHook-Request-Origin; default "tether". Event Grid sends
	// "eventgrid.azure.net"; use the hub's host name.
	Origin string
	// Topic is the topic of the validation event (the hub's resource id,
	// Resource.ID).
	Topic string
	// ManualWindow is how long manual validation stays possible; default
	// 5 minutes, as Event Grid.
	ManualWindow time.Duration
	// Now and NewCode are for tests; defaults time.Now and a random UUID.
	Now     func() time.Time
	NewCode func() string
}

// ValidationURLFunc returns a Handshaker.ValidationURL for a hub served at
// base: base/api/v1/subscriptions/{name}/validate?code={code}.
func ValidationURLFunc(base string) func(name, code string) string {
	base = strings.TrimRight(base, "/")
	return func(name, code string) string {
		return base + "/api/v1/subscriptions/" + url.PathEscape(name) + "/validate?code=" + url.QueryEscape(code)
	}
}

// ValidationEventData is data of a SubscriptionValidationEvent.
type ValidationEventData struct {
	ValidationCode string `json:"validationCode"`
	ValidationURL  string `json:"validationUrl,omitempty"`
}

// ValidationResponse is what an endpoint answers to prove ownership.
type ValidationResponse struct {
	ValidationResponse string `json:"validationResponse"`
}

// Handshake runs the handshake of s's schema against s's endpoint and
// returns s with ProvisioningState and Validation set: Succeeded,
// AwaitingManualAction or Failed. The error is nil unless the state is
// Failed; then it wraps ErrValidationFailed and says why (also in
// Validation.Error). Store the returned subscription either way.
func (h *Handshaker) Handshake(ctx context.Context, s Subscription) (Subscription, error) {
	now := h.now()
	code := newUUID()
	if h.NewCode != nil {
		code = h.NewCode()
	}
	v := &ValidationState{Endpoint: s.Destination.Properties.EndpointURL, Code: code, StartedAt: now}
	if h.ValidationURL != nil {
		v.URL = h.ValidationURL(s.Name, code)
	}
	s.Validation = v
	var err error
	if s.EventDeliverySchema == CloudEventSchemaV1_0 {
		v.Method = MethodAbuseProtection
		err = h.abuseProtection(ctx, s, v)
	} else {
		v.Method = MethodValidationEvent
		err = h.validationEvent(ctx, s, v)
	}
	switch {
	case err != nil:
		s.ProvisioningState = Failed
		v.Error = err.Error()
		return s, fmt.Errorf("%w: subscription %s: %w", ErrValidationFailed, s.Name, err)
	case !v.ValidatedAt.IsZero():
		s.ProvisioningState = Succeeded
	default:
		s.ProvisioningState = AwaitingManualAction
		v.ExpiresAt = now.Add(h.manualWindow())
	}
	return s, nil
}

// validationEvent runs Event Grid's handshake; it sets v.ValidatedAt on
// proof, returns nil for "await manual validation", else the failure.
func (h *Handshaker) validationEvent(ctx context.Context, s Subscription, v *ValidationState) error {
	ev := EventGridEvent{
		ID: newUUID(), Topic: h.Topic, Subject: "", EventType: string(SubscriptionValidationEvent),
		EventTime: FormatTime(v.StartedAt), DataVersion: "1", MetadataVersion: MetadataVersion,
		Data: mustMarshal(ValidationEventData{ValidationCode: v.Code, ValidationURL: v.URL}),
	}
	body := mustMarshal([]EventGridEvent{ev})
	req, err := http.NewRequest(http.MethodPost, v.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ContentTypeEventGrid)
	req.Header.Set(HeaderEventType, EventTypeValidation)
	req.Header.Set(HeaderSubscriptionName, s.HeaderName())
	req.Header.Set(HeaderDeliveryCount, "0")
	req.Header.Set(HeaderDataVersion, "1")
	req.Header.Set(HeaderMetadataVersion, MetadataVersion)
	resp, data, err := h.do(ctx, req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("endpoint answered %s; the validation needs 200 OK with {\"validationResponse\": code}, or 200 OK and a GET of the validationUrl", resp.Status)
	}
	var r ValidationResponse
	if json.Unmarshal(data, &r) != nil || r.ValidationResponse == "" {
		if v.URL == "" {
			return errors.New("endpoint answered 200 OK without the validation code, and manual validation is not available")
		}
		return nil // await a GET of the validation URL
	}
	if !sameCode(r.ValidationResponse, v.Code) {
		return fmt.Errorf("endpoint answered validationResponse %q, not the validation code it was sent", r.ValidationResponse)
	}
	v.ValidatedAt = h.now()
	return nil
}

// abuseProtection runs the CloudEvents webhook handshake, with the same
// result convention as validationEvent.
func (h *Handshaker) abuseProtection(ctx context.Context, s Subscription, v *ValidationState) error {
	req, err := http.NewRequest(http.MethodOptions, v.Endpoint, nil)
	if err != nil {
		return err
	}
	origin := h.origin()
	req.Header.Set(HeaderWebHookOrigin, origin)
	if v.URL != "" {
		req.Header.Set(HeaderWebHookCallback, v.URL)
	}
	resp, _, err := h.do(ctx, req)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint answered OPTIONS with %s; the CloudEvents abuse-protection handshake needs 200 OK with %s: %s (or *)", resp.Status, HeaderWebHookAllowOrigin, origin)
	}
	allowed := strings.TrimSpace(resp.Header.Get(HeaderWebHookAllowOrigin))
	switch {
	case allowed == "*" || strings.EqualFold(allowed, origin):
		v.AllowedRate = strings.TrimSpace(resp.Header.Get(HeaderWebHookAllowedRate))
		v.ValidatedAt = h.now()
		return nil
	case allowed != "":
		return fmt.Errorf("endpoint allows origin %q, not %q", allowed, origin)
	case v.URL == "":
		return fmt.Errorf("endpoint answered OPTIONS without %s, and callback validation is not available", HeaderWebHookAllowOrigin)
	}
	return nil // await the callback
}

// do sends req with the timeout and reads a bounded body.
func (h *Handshaker) do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req = req.WithContext(ctx)
	client := h.Client
	switch {
	case client != nil:
	case h.Endpoints != nil:
		h.policy.once.Do(func() { h.policy.client = policyClient(h.Endpoints) })
		client = h.policy.client
	default:
		client = noRedirectClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, nil, fmt.Errorf("no answer within %s", timeout)
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxHandshakeBody))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp, data, nil
}

var noRedirectClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// policyClient is noRedirectClient dialling only what p allows, through
// no proxy (which would dial for it).
func policyClient(p *EndpointPolicy) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, Control: p.Control}).DialContext
	return &http.Client{Transport: t, CheckRedirect: noRedirectClient.CheckRedirect}
}

func (h *Handshaker) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handshaker) origin() string {
	if h.Origin != "" {
		return h.Origin
	}
	return DefaultOrigin
}

func (h *Handshaker) manualWindow() time.Duration {
	if h.ManualWindow > 0 {
		return h.ManualWindow
	}
	return DefaultManualWindow
}

func sameCode(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
