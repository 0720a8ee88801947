package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
)

// SubscriptionService manages event subscriptions (webhook, stream,
// command and e-mail destinations): the definitions in the subscription
// store, the endpoint validation handshake (or the check of another kind
// of destination), and the delivery engine's figures and dead letters. The app implements it on top of
// events.SubscriptionStore, events.Handshaker and the delivery engine;
// apitest.Subscriptions is an in-memory one for tests.
//
// Names are unique without regard to case (events.NameKey). Revisions are
// the store's (never 0); the API serves them as ETags. Errors are the
// events package's sentinels (errors.Is): ErrNotFound, ErrExists,
// ErrConflict, ErrInvalid (a *events.ValidationError, listed field by
// field), ErrValidationCode, ErrValidationExpired, ErrNotAwaitingValidation;
// anything else is the hub's fault (500, not shown to the caller).
type SubscriptionService interface {
	// Create stores a new subscription and runs its endpoint handshake
	// (webhooks) or the check of its destination (other kinds).
	// s is a definition the API decoded and validated
	// (events.DecodeSubscription: defaults applied, no hub-owned state).
	// It returns the stored subscription, state included, and its
	// revision; ErrExists if the name is taken. The outcome of the
	// handshake is the returned ProvisioningState (Succeeded,
	// AwaitingManualAction or Failed, with Validation.Error saying why),
	// not an error: the subscription is stored in every case.
	Create(ctx context.Context, s events.Subscription) (events.Subscription, uint64, error)
	// Update replaces the definition of s.Name (s as for Create) if its
	// revision is expectRevision (0: any) and returns the stored
	// subscription and its new revision. The hub-owned state is kept
	// unless the endpoint must be validated again: when s.NeedsHandshake
	// with the old Validation (endpoint or schema changed) or the old
	// state is Failed, the handshake runs as for Create. ErrNotFound,
	// ErrConflict.
	Update(ctx context.Context, s events.Subscription, expectRevision uint64) (events.Subscription, uint64, error)
	// Delete removes the subscription (and stops its delivery) if its
	// revision is expectRevision (0: any). ErrNotFound, ErrConflict.
	Delete(ctx context.Context, name string, expectRevision uint64) error
	// Get returns the subscription and its revision, or ErrNotFound.
	Get(ctx context.Context, name string) (events.Subscription, uint64, error)
	// List returns every subscription, ordered by NameKey.
	List(ctx context.Context) ([]events.Subscription, error)
	// ConfirmValidation completes a manual validation of subscription name
	// with code (someone opened the validationUrl, or a CloudEvents
	// endpoint called WebHook-Request-Callback): events.ConfirmValidation
	// applied to the stored subscription, and the result stored. It
	// returns the stored subscription and ConfirmValidation's error
	// (ErrValidationCode, ErrValidationExpired, ErrNotAwaitingValidation),
	// or ErrNotFound.
	ConfirmValidation(ctx context.Context, name, code string) (events.Subscription, error)
	// DeadLetters returns at most limit (≥ 1) dead-lettered events of the
	// subscription, oldest first; none when it does not keep them
	// (deadLetterDestination None). ErrNotFound.
	DeadLetters(ctx context.Context, name string, limit int) ([]events.DeadLetter, error)
	// Replay removes the dead letters named by r (event ids,
	// DeadLetter.Event.ID, or all of them) and delivers those events again
	// from their first attempt, in order per device. Ids it does not hold
	// are listed in ReplayResult.NotFound, not an error. ErrNotFound for
	// the subscription.
	Replay(ctx context.Context, name string, r ReplayRequest) (ReplayResult, error)
	// Status returns the subscription's delivery figures and its last
	// deliveries attempts (newest first). ErrNotFound.
	Status(ctx context.Context, name string, deliveries int) (SubscriptionStatus, error)
}

// SubscriptionStatus is the answer of GET
// /api/v1/subscriptions/{name}/status: the subscription's state, what its
// delivery has done since the hub started, and its delivery log's last
// attempts (newest first; a command's output included).
type SubscriptionStatus struct {
	Name              string                   `json:"name"`
	ProvisioningState events.ProvisioningState `json:"provisioningState"`
	Delivery          events.DeliveryStatus    `json:"delivery"`
	Deliveries        []events.DeliveryAttempt `json:"deliveries"`
}

// ReplayRequest is the body of POST
// /api/v1/subscriptions/{name}/deadletters/replay: ids of dead letters
// (event ids), or all. Exactly one of them is set.
type ReplayRequest struct {
	IDs []string `json:"ids,omitempty"`
	All bool     `json:"all,omitempty"`
}

// ReplayResult answers a replay: how many events were queued again, and
// the requested ids that were not dead letters of the subscription.
type ReplayResult struct {
	Replayed int      `json:"replayed"`
	NotFound []string `json:"notFound"`
}

// SubscriptionList is the answer of GET /api/v1/subscriptions.
type SubscriptionList struct {
	Subscriptions []events.Subscription `json:"subscriptions"`
}

// DeadLetterList is the answer of GET /api/v1/subscriptions/{name}/deadletters:
// each dead letter as Event Grid writes one in the subscription's schema
// (events.DeadLetter.JSON): the event, deadLetterReason, deliveryAttempts,
// lastDeliveryOutcome, publishTime, lastDeliveryAttemptTime, plus
// lastHttpStatusCode and lastError (all in lower case for CloudEvents).
type DeadLetterList struct {
	Name                string            `json:"name"`
	EventDeliverySchema events.Schema     `json:"eventDeliverySchema"`
	DeadLetters         []json.RawMessage `json:"deadLetters"`
}

// ValidationResult answers the validation callback.
type ValidationResult struct {
	Name              string                   `json:"name"`
	ProvisioningState events.ProvisioningState `json:"provisioningState"`
	Message           string                   `json:"message"`
}

// InvalidError is the 400 body for a refused subscription: the v1 error
// with every problem in details, each with its JSON path.
type InvalidError struct {
	Error struct {
		Code    string              `json:"code"`
		Message string              `json:"message"`
		Details []events.FieldError `json:"details"`
	} `json:"error"`
}

// Error codes of the subscription endpoints (besides the shared ones).
const (
	CodeSubscriptionNotFound      = "SubscriptionNotFound"
	CodeSubscriptionAlreadyExists = "SubscriptionAlreadyExists"
	CodeValidationCodeInvalid     = "ValidationCodeInvalid"
	CodeValidationExpired         = "ValidationExpired"
	CodeNotAwaitingValidation     = "NotAwaitingValidation"
)

const (
	// maxSubscriptionBody: 25 filters × 25 values × 512 characters is
	// ~320 KiB of JSON in the worst case.
	maxSubscriptionBody = 1 << 20
	maxReplayBody       = 1 << 20
	defaultDeadLetters  = 100
	maxDeadLetters      = 10000
	defaultDeliveries   = 10
	maxDeliveries       = 200
)

// subscriptions routes /api/v1/subscriptions{rest}.
//
//	""  "/"                          GET list, POST create
//	"/{name}"                        GET, PUT, DELETE
//	"/{name}/validate"               GET, POST (no auth: the code is the credential)
//	"/{name}/status"                 GET (?deliveries=N: the delivery log's last N)
//	"/{name}/deadletters"            GET
//	"/{name}/deadletters/replay"     POST
func (s *Server) subscriptions(w http.ResponseWriter, r *http.Request, rest string) {
	if rest == "" || rest == "/" {
		if !allow(w, r, s.v1Error, http.MethodGet, http.MethodPost) {
			return
		}
		if r.Method == http.MethodPost {
			if c, w, ok := s.subscriptionChange(w, r, journal.OpEventSubscriptionWrite, ""); ok {
				defer c.end()
				s.createSubscription(w, r)
			}
			return
		}
		if s.subscriptionAuth(w, r) {
			s.listSubscriptions(w, r)
		}
		return
	}
	seg, sub, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	name, err := url.PathUnescape(seg)
	if err != nil || seg == "" {
		s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath())
		return
	}
	switch sub {
	case "":
		if !allow(w, r, s.v1Error, http.MethodGet, http.MethodPut, http.MethodDelete) {
			return
		}
		if r.Method == http.MethodGet {
			if s.subscriptionAuth(w, r) {
				s.getSubscription(w, r, name)
			}
			return
		}
		opName := journal.OpEventSubscriptionWrite
		if r.Method == http.MethodDelete {
			opName = journal.OpEventSubscriptionDelete
		}
		c, w, ok := s.subscriptionChange(w, r, opName, name)
		if !ok {
			return
		}
		defer c.end()
		if r.Method == http.MethodPut {
			s.updateSubscription(w, r, name)
		} else {
			s.deleteSubscription(w, r, name)
		}
	case "validate":
		if allow(w, r, s.v1Error, http.MethodGet, http.MethodPost) {
			s.confirmValidation(w, r, name)
		}
	case "status":
		if allow(w, r, s.v1Error, http.MethodGet) && s.subscriptionAuth(w, r) {
			s.subscriptionStatus(w, r, name)
		}
	case "deadletters":
		if allow(w, r, s.v1Error, http.MethodGet) && s.subscriptionAuth(w, r) {
			s.listDeadLetters(w, r, name)
		}
	case "deadletters/replay":
		if allow(w, r, s.v1Error, http.MethodPost) && s.subscriptionAuth(w, r) {
			s.replayDeadLetters(w, r, name)
		}
	default:
		s.v1Error(w, r, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.EscapedPath())
	}
}

// subscriptionChange begins a change of subscription name ("" for a
// create by POST): the owner's rights (ConfigRights), the hub's
// subscriptions present, and an Administrative record when it ends.
func (s *Server) subscriptionChange(w http.ResponseWriter, r *http.Request, opName, name string) (*adminChange, http.ResponseWriter, bool) {
	c, cw, ok := s.beginChange(w, r, opName, name, maxSubscriptionBody, func(n string) any {
		if s.d.Subscriptions == nil || !events.ValidName(n) {
			return nil
		}
		sub, _, err := s.d.Subscriptions.Get(context.Background(), n)
		if err != nil {
			return nil
		}
		return redact(sub)
	})
	if ok && s.d.Subscriptions == nil {
		s.unavailable(cw, r, "event subscriptions")
		c.end()
		return nil, nil, false
	}
	return c, cw, ok
}

// subscriptionAuth checks the token (ServiceConnect) and that the hub has
// a subscription service.
func (s *Server) subscriptionAuth(w http.ResponseWriter, r *http.Request) bool {
	return s.serviceAuth(w, r, s.d.Subscriptions != nil, "event subscriptions")
}

// serviceAuth checks the token (ServiceConnect) and answers 503 when the
// hub was built without the service (what) the endpoint needs.
func (s *Server) serviceAuth(w http.ResponseWriter, r *http.Request, present bool, what string) bool {
	if _, ok := s.authorize(w, r, registry.ServiceConnect, s.v1Error); !ok {
		return false
	}
	if !present {
		s.unavailable(w, r, what)
		return false
	}
	return true
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error())
		return
	}
	subs, err := s.d.Subscriptions.List(r.Context())
	if err != nil {
		s.subscriptionFail(w, r, "", err)
		return
	}
	out := SubscriptionList{Subscriptions: make([]events.Subscription, len(subs))}
	for i, sub := range subs {
		out.Subscriptions[i] = redact(sub)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r, maxSubscriptionBody, s.v1Error)
	if !ok {
		return
	}
	def, err := s.decodeSubscription(body, "")
	if err != nil {
		s.subscriptionFail(w, r, def.Name, err)
		return
	}
	sub, rev, err := s.d.Subscriptions.Create(r.Context(), def)
	if err != nil {
		s.subscriptionFail(w, r, def.Name, err)
		return
	}
	w.Header().Set("Location", subscriptionPath(sub.Name))
	writeSubscription(w, http.StatusCreated, sub, rev)
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request, name string) {
	if !events.ValidName(name) {
		s.subscriptionFail(w, r, name, events.ErrNotFound)
		return
	}
	sub, rev, err := s.d.Subscriptions.Get(r.Context(), name)
	if err != nil {
		s.subscriptionFail(w, r, name, err)
		return
	}
	writeSubscription(w, http.StatusOK, sub, rev)
}

func (s *Server) updateSubscription(w http.ResponseWriter, r *http.Request, name string) {
	if !events.ValidName(name) {
		s.subscriptionFail(w, r, name, events.ErrNotFound)
		return
	}
	rev, ok := s.ifMatch(w, r)
	if !ok {
		return
	}
	body, ok := s.readBody(w, r, maxSubscriptionBody, s.v1Error)
	if !ok {
		return
	}
	def, err := s.decodeSubscription(body, name)
	if err != nil {
		s.subscriptionFail(w, r, name, err)
		return
	}
	sub, newRev, err := s.d.Subscriptions.Update(r.Context(), def, rev)
	if err != nil {
		s.subscriptionFail(w, r, name, err)
		return
	}
	writeSubscription(w, http.StatusOK, sub, newRev)
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request, name string) {
	if !events.ValidName(name) {
		s.subscriptionFail(w, r, name, events.ErrNotFound)
		return
	}
	rev, ok := s.ifMatch(w, r)
	if !ok {
		return
	}
	if err := s.d.Subscriptions.Delete(r.Context(), name, rev); err != nil {
		s.subscriptionFail(w, r, name, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// confirmValidation serves the validation URL the handshake sent
// (events.ValidationURLFunc): GET (Event Grid's validationUrl, opened by a
// person or the receiver) or POST (a CloudEvents WebHook-Request-Callback
// may use either) with ?code=. It needs no token: whoever received the
// validation request holds the code, and nobody else can learn it (the API
// never serves it). A missing subscription and a wrong code get the same
// answer, so the endpoint does not tell unauthenticated callers which
// names exist.
func (s *Server) confirmValidation(w http.ResponseWriter, r *http.Request, name string) {
	if s.d.Subscriptions == nil {
		s.unavailable(w, r, "event subscriptions")
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "code"); err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error())
		return
	}
	code := q.Get("code")
	if code == "" {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, "the code query parameter is required: open the validation URL exactly as the hub sent it")
		return
	}
	if !events.ValidName(name) {
		s.subscriptionFail(w, r, name, events.ErrValidationCode)
		return
	}
	sub, err := s.d.Subscriptions.ConfirmValidation(r.Context(), name, code)
	if err != nil {
		if errors.Is(err, events.ErrNotFound) {
			err = events.ErrValidationCode
		}
		s.subscriptionFail(w, r, name, err)
		return
	}
	s.log.Info("subscription endpoint validated manually", "subscription", sub.Name, "state", sub.ProvisioningState)
	writeJSON(w, http.StatusOK, ValidationResult{
		Name: sub.Name, ProvisioningState: sub.ProvisioningState,
		Message: "the endpoint of subscription " + sub.Name + " is validated; events will be delivered to it",
	})
}

// countParam reads the positive count parameter param (default def, at
// most max); ok is false when it answered 400.
func (s *Server) countParam(w http.ResponseWriter, r *http.Request, param string, def, max int) (int, bool) {
	q := r.URL.Query()
	if err := checkParams(q, param); err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error())
		return 0, false
	}
	v := q.Get(param)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, fmt.Sprintf("%s %q is not a positive number", param, v))
		return 0, false
	}
	return min(n, max), true
}

func (s *Server) subscriptionStatus(w http.ResponseWriter, r *http.Request, name string) {
	n, ok := s.countParam(w, r, "deliveries", defaultDeliveries, maxDeliveries)
	if !ok {
		return
	}
	if !events.ValidName(name) {
		s.subscriptionFail(w, r, name, events.ErrNotFound)
		return
	}
	st, err := s.d.Subscriptions.Status(r.Context(), name, n)
	if err != nil {
		s.subscriptionFail(w, r, name, err)
		return
	}
	if st.Deliveries == nil {
		st.Deliveries = []events.DeliveryAttempt{}
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request, name string) {
	limit, ok := s.countParam(w, r, "limit", defaultDeadLetters, maxDeadLetters)
	if !ok {
		return
	}
	if !events.ValidName(name) {
		s.subscriptionFail(w, r, name, events.ErrNotFound)
		return
	}
	sub, _, err := s.d.Subscriptions.Get(r.Context(), name)
	if err != nil {
		s.subscriptionFail(w, r, name, err)
		return
	}
	dls, err := s.d.Subscriptions.DeadLetters(r.Context(), name, limit)
	if err != nil {
		s.subscriptionFail(w, r, name, err)
		return
	}
	if len(dls) > limit {
		dls = dls[:limit]
	}
	out := DeadLetterList{Name: sub.Name, EventDeliverySchema: sub.EventDeliverySchema, DeadLetters: make([]json.RawMessage, len(dls))}
	for i, d := range dls {
		out.DeadLetters[i] = d.JSON(sub.EventDeliverySchema)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) replayDeadLetters(w http.ResponseWriter, r *http.Request, name string) {
	body, ok := s.readBody(w, r, maxReplayBody, s.v1Error)
	if !ok {
		return
	}
	req, err := decodeReplay(body)
	if err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error())
		return
	}
	if !events.ValidName(name) {
		s.subscriptionFail(w, r, name, events.ErrNotFound)
		return
	}
	res, err := s.d.Subscriptions.Replay(r.Context(), name, req)
	if err != nil {
		s.subscriptionFail(w, r, name, err)
		return
	}
	if res.NotFound == nil {
		res.NotFound = []string{}
	}
	writeJSON(w, http.StatusOK, res)
}

// decodeReplay reads a replay request strictly: exactly one of ids (not
// empty, no empty id) and all.
func decodeReplay(body []byte) (ReplayRequest, error) {
	var req ReplayRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf(`invalid replay request: %v; send {"ids":["<event id>",…]} or {"all":true}`, err)
	}
	if dec.More() {
		return req, errors.New("invalid replay request: data after the object")
	}
	switch {
	case req.All && len(req.IDs) > 0:
		return req, errors.New(`give "ids" or "all": true, not both`)
	case !req.All && len(req.IDs) == 0:
		return req, errors.New(`nothing to replay: give "ids" (event ids of dead letters) or "all": true`)
	}
	seen := make(map[string]bool, len(req.IDs))
	ids := req.IDs[:0]
	for i, id := range req.IDs {
		if id == "" {
			return req, fmt.Errorf("ids[%d] is empty", i)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	req.IDs = ids
	return req, nil
}

// decodeSubscription decodes and validates a definition with the hub's
// policy. For PUT, urlName is the name in the URL: a body without a name
// takes it, a body with another name is refused.
func (s *Server) decodeSubscription(body []byte, urlName string) (events.Subscription, error) {
	sub, err := events.DecodeSubscriptionAs(body, s.d.SubscriptionPolicy, urlName)
	if urlName == "" {
		return sub, err
	}
	var ve *events.ValidationError
	if err != nil && !errors.As(err, &ve) {
		return sub, err
	}
	var errs []events.FieldError
	if ve != nil {
		errs = ve.Errors
	}
	if events.NameKey(sub.Name) != events.NameKey(urlName) {
		errs = append(errs, events.FieldError{Field: "name",
			Message: fmt.Sprintf("%q does not match the name in the URL, %q (a subscription cannot be renamed)", sub.Name, urlName)})
	}
	if len(errs) > 0 {
		return sub, &events.ValidationError{Errors: errs}
	}
	return sub, nil
}

// ifMatch reads If-Match: absent or "*" is revision 0 (any); otherwise an
// ETag this API served ("<revision>", weak or strong). Anything else
// cannot match any revision: 412.
func (s *Server) ifMatch(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, true
	}
	v := strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	rev, err := strconv.ParseUint(v, 10, 64)
	if err != nil || rev == 0 {
		s.v1Error(w, r, http.StatusPreconditionFailed, registry.CodePreconditionFailed,
			fmt.Sprintf("If-Match %s is not an ETag of a subscription", h))
		return 0, false
	}
	return rev, true
}

// subscriptionFail answers err of a subscription call.
func (s *Server) subscriptionFail(w http.ResponseWriter, r *http.Request, name string, err error) {
	var ve *events.ValidationError
	switch {
	case errors.As(err, &ve):
		var b InvalidError
		b.Error.Code = registry.CodeArgumentInvalid
		b.Error.Message = fmt.Sprintf("the subscription definition has %d problem%s: %s", len(ve.Errors), plural(len(ve.Errors)), ve.Error())
		b.Error.Details = ve.Errors
		if b.Error.Details == nil {
			b.Error.Details = []events.FieldError{}
		}
		writeJSON(w, http.StatusBadRequest, b)
	case errors.Is(err, events.ErrNotFound):
		s.v1Error(w, r, http.StatusNotFound, CodeSubscriptionNotFound, fmt.Sprintf("there is no subscription named %q", name))
	case errors.Is(err, events.ErrExists):
		s.v1Error(w, r, http.StatusConflict, CodeSubscriptionAlreadyExists,
			fmt.Sprintf("a subscription named %q already exists (names are unique without regard to case); update it with PUT", name))
	case errors.Is(err, events.ErrConflict):
		s.v1Error(w, r, http.StatusPreconditionFailed, registry.CodePreconditionFailed,
			fmt.Sprintf("subscription %q changed since it was read (If-Match does not match its ETag); read it again", name))
	case errors.Is(err, events.ErrValidationCode):
		s.v1Error(w, r, http.StatusForbidden, CodeValidationCodeInvalid,
			fmt.Sprintf("the code does not validate subscription %q", name))
	case errors.Is(err, events.ErrValidationExpired):
		s.v1Error(w, r, http.StatusGone, CodeValidationExpired,
			fmt.Sprintf("the validation window of subscription %q has passed; update the subscription to validate its endpoint again", name))
	case errors.Is(err, events.ErrNotAwaitingValidation):
		s.v1Error(w, r, http.StatusConflict, CodeNotAwaitingValidation,
			fmt.Sprintf("subscription %q is not awaiting manual validation", name))
	default:
		s.fail(w, r, err, s.v1Error)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// writeSubscription answers one subscription with its ETag.
func writeSubscription(w http.ResponseWriter, status int, sub events.Subscription, rev uint64) {
	w.Header().Set("ETag", SubscriptionETag(rev))
	writeJSON(w, status, redact(sub))
}

// SubscriptionETag is the ETag of a subscription revision.
func SubscriptionETag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// subscriptionPath is the URL path of a subscription.
func subscriptionPath(name string) string { return "/api/v1/subscriptions/" + url.PathEscape(name) }

// redact removes what the API must never serve: the validation code and
// the validation URL, which holds it (events.ValidationState). The rest of
// the state (method, times, error) is shown.
func redact(sub events.Subscription) events.Subscription {
	if sub.Validation != nil {
		v := *sub.Validation
		v.Code, v.URL = "", ""
		sub.Validation = &v
	}
	return sub
}
