// Package apitest has in-memory implementations of the API's event
// dependencies (api.SubscriptionService, api.EventTail) for tests of the
// API and of its clients. They follow the contracts documented on the
// interfaces and nothing else: no HTTP handshake unless one is plugged in,
// no delivery.
package apitest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/events/memstore"
)

// HandshakeFunc validates a subscription's endpoint: the signature of
// (*events.Handshaker).Handshake. It returns s with ProvisioningState and
// Validation set, and an error when the state is Failed.
type HandshakeFunc func(ctx context.Context, s events.Subscription) (events.Subscription, error)

// Subscriptions is an api.SubscriptionService on an events.SubscriptionStore
// (a memstore unless Store is set), with dead letters added by the test.
type Subscriptions struct {
	Store events.SubscriptionStore
	// Handshake runs on create, and on update when the endpoint must be
	// validated again; nil: Succeed.
	Handshake HandshakeFunc
	// Now is the clock of ConfirmValidation; nil: time.Now.
	Now func() time.Time

	mu         sync.Mutex
	dead       map[string][]events.DeadLetter // by events.NameKey
	replayed   map[string][]events.DeadLetter
	status     map[string]api.SubscriptionStatus
	handshakes int
}

var _ api.SubscriptionService = (*Subscriptions)(nil)

// NewSubscriptions returns a service on an empty memstore whose handshakes
// succeed.
func NewSubscriptions() *Subscriptions { return &Subscriptions{Store: memstore.New()} }

// Succeed is a handshake that validates every endpoint at once (and a
// check that passes every other kind of destination).
func Succeed(_ context.Context, s events.Subscription) (events.Subscription, error) {
	now := time.Now()
	if s.Destination.Kind() != events.EndpointWebHook {
		return s.WithCheck(nil, now, now), nil
	}
	s.Validation = &events.ValidationState{Method: method(s), Endpoint: s.Destination.Properties.EndpointURL, StartedAt: now, ValidatedAt: now}
	s.ProvisioningState = events.Succeeded
	return s, nil
}

// AwaitManual is a handshake whose endpoint accepts the validation
// request without proving ownership: the subscription awaits manual
// validation with code (through validationURL(name, code), if not nil)
// for window.
func AwaitManual(code string, window time.Duration, validationURL func(name, code string) string) HandshakeFunc {
	return func(_ context.Context, s events.Subscription) (events.Subscription, error) {
		now := time.Now()
		v := &events.ValidationState{Method: method(s), Endpoint: s.Destination.Properties.EndpointURL, Code: code, StartedAt: now, ExpiresAt: now.Add(window)}
		if validationURL != nil {
			v.URL = validationURL(s.Name, code)
		}
		s.Validation, s.ProvisioningState = v, events.AwaitingManualAction
		return s, nil
	}
}

// Fail is a handshake that fails with reason.
func Fail(reason string) HandshakeFunc {
	return func(_ context.Context, s events.Subscription) (events.Subscription, error) {
		s.Validation = &events.ValidationState{Method: method(s), Endpoint: s.Destination.Properties.EndpointURL, StartedAt: time.Now(), Error: reason}
		s.ProvisioningState = events.Failed
		return s, errors.Join(events.ErrValidationFailed, errors.New(reason))
	}
}

func method(s events.Subscription) string {
	if s.EventDeliverySchema == events.CloudEventSchemaV1_0 {
		return events.MethodAbuseProtection
	}
	return events.MethodValidationEvent
}

func (f *Subscriptions) handshake(ctx context.Context, s events.Subscription) events.Subscription {
	f.mu.Lock()
	f.handshakes++
	h := f.Handshake
	f.mu.Unlock()
	if h == nil {
		h = Succeed
	}
	out, _ := h(ctx, s) // the outcome is the state; stored either way
	return out
}

// Handshakes counts the handshakes run so far.
func (f *Subscriptions) Handshakes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handshakes
}

func (f *Subscriptions) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Create implements api.SubscriptionService: the name is reserved
// (Creating) before the handshake runs.
func (f *Subscriptions) Create(ctx context.Context, s events.Subscription) (events.Subscription, uint64, error) {
	s = s.Definition()
	s.ProvisioningState = events.Creating
	rev, err := f.Store.Create(ctx, s)
	if err != nil {
		return events.Subscription{}, 0, err
	}
	s = f.handshake(ctx, s)
	rev, err = f.Store.Update(ctx, s, rev)
	return s, rev, err
}

// Update implements api.SubscriptionService.
func (f *Subscriptions) Update(ctx context.Context, s events.Subscription, expectRevision uint64) (events.Subscription, uint64, error) {
	old, rev, err := f.Store.Get(ctx, s.Name)
	if err != nil {
		return events.Subscription{}, 0, err
	}
	if expectRevision != 0 && expectRevision != rev {
		return events.Subscription{}, 0, events.ErrConflict
	}
	s = s.Definition()
	s.ProvisioningState, s.Validation = old.ProvisioningState, old.Validation
	if s.NeedsHandshake() || old.ProvisioningState == events.Failed {
		s.ProvisioningState = events.Updating
		s = f.handshake(ctx, s)
	}
	rev, err = f.Store.Update(ctx, s, rev)
	return s, rev, err
}

// Delete implements api.SubscriptionService.
func (f *Subscriptions) Delete(ctx context.Context, name string, expectRevision uint64) error {
	if err := f.Store.Delete(ctx, name, expectRevision); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.dead, events.NameKey(name))
	f.mu.Unlock()
	return nil
}

// Get implements api.SubscriptionService.
func (f *Subscriptions) Get(ctx context.Context, name string) (events.Subscription, uint64, error) {
	return f.Store.Get(ctx, name)
}

// List implements api.SubscriptionService.
func (f *Subscriptions) List(ctx context.Context) ([]events.Subscription, error) {
	return f.Store.List(ctx)
}

// ConfirmValidation implements api.SubscriptionService with
// events.ConfirmValidation.
func (f *Subscriptions) ConfirmValidation(ctx context.Context, name, code string) (events.Subscription, error) {
	s, rev, err := f.Store.Get(ctx, name)
	if err != nil {
		return events.Subscription{}, err
	}
	out, cerr := events.ConfirmValidation(s, code, f.now())
	if cerr != nil && !errors.Is(cerr, events.ErrValidationExpired) {
		return s, cerr
	}
	if _, err := f.Store.Update(ctx, out, rev); err != nil {
		return s, err
	}
	return out, cerr
}

// AddDeadLetters makes ds dead letters of subscription name.
func (f *Subscriptions) AddDeadLetters(name string, ds ...events.DeadLetter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead == nil {
		f.dead = map[string][]events.DeadLetter{}
	}
	k := events.NameKey(name)
	f.dead[k] = append(f.dead[k], ds...)
}

// Replayed returns the dead letters of subscription name replayed so far,
// in replay order.
func (f *Subscriptions) Replayed(name string) []events.DeadLetter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.replayed[events.NameKey(name)])
}

// DeadLetters implements api.SubscriptionService.
func (f *Subscriptions) DeadLetters(ctx context.Context, name string, limit int) ([]events.DeadLetter, error) {
	if _, _, err := f.Store.Get(ctx, name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ds := f.dead[events.NameKey(name)]
	return slices.Clone(ds[:min(limit, len(ds))]), nil
}

// Replay implements api.SubscriptionService: the dead letters move to
// Replayed.
func (f *Subscriptions) Replay(ctx context.Context, name string, r api.ReplayRequest) (api.ReplayResult, error) {
	if _, _, err := f.Store.Get(ctx, name); err != nil {
		return api.ReplayResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := events.NameKey(name)
	var res api.ReplayResult
	want := map[string]bool{}
	for _, id := range r.IDs {
		want[id] = true
	}
	var keep []events.DeadLetter
	for _, d := range f.dead[k] {
		if r.All || want[d.Event.ID] {
			if f.replayed == nil {
				f.replayed = map[string][]events.DeadLetter{}
			}
			f.replayed[k] = append(f.replayed[k], d)
			res.Replayed++
			delete(want, d.Event.ID)
			continue
		}
		keep = append(keep, d)
	}
	f.dead[k] = keep
	for _, id := range r.IDs {
		if want[id] {
			res.NotFound = append(res.NotFound, id)
		}
	}
	return res, nil
}

// TailCall is one running EventTail.Tail.
type TailCall struct {
	DeviceID string
	Types    []string
}

// EventTail is an api.EventTail fed by Publish.
type EventTail struct {
	mu      sync.Mutex
	tails   map[*tail]struct{}
	started chan TailCall
}

type tail struct {
	TailCall
	fn   func(json.RawMessage)
	errc chan error
}

var _ api.EventTail = (*EventTail)(nil)

// NewEventTail returns a feed without tails.
func NewEventTail() *EventTail {
	return &EventTail{tails: map[*tail]struct{}{}, started: make(chan TailCall, 64)}
}

// Started reports each Tail call once it is registered, so a test can
// publish after the stream is open.
func (f *EventTail) Started() <-chan TailCall { return f.started }

// Tail implements api.EventTail.
func (f *EventTail) Tail(ctx context.Context, deviceID string, types []string, fn func(json.RawMessage)) error {
	t := &tail{TailCall: TailCall{DeviceID: deviceID, Types: slices.Clone(types)}, fn: fn, errc: make(chan error, 1)}
	f.mu.Lock()
	f.tails[t] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.tails, t)
		f.mu.Unlock()
	}()
	select {
	case f.started <- t.TailCall:
	default:
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-t.errc:
		return err
	}
}

// Publish gives e, in the Event Grid schema, to every tail that asks for
// its device and type, and returns how many took it.
func (f *EventTail) Publish(e events.Event) int {
	b, err := json.Marshal(e.EventGrid())
	if err != nil {
		panic(err)
	}
	return f.PublishRaw(e.DeviceID, string(e.Type), b)
}

// PublishRaw gives msg as the event of device and type typ.
func (f *EventTail) PublishRaw(device, typ string, msg json.RawMessage) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for t := range f.tails {
		if (t.DeviceID == "" || t.DeviceID == device) && slices.Contains(t.Types, typ) {
			t.fn(msg)
			n++
		}
	}
	return n
}

// Fail ends every running tail with err.
func (f *EventTail) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for t := range f.tails {
		select {
		case t.errc <- err:
		default:
		}
	}
}

// SetStatus sets what Status answers for subscription name (its name and
// state come from the store).
func (f *Subscriptions) SetStatus(name string, st events.DeliveryStatus, log ...events.DeliveryAttempt) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status == nil {
		f.status = map[string]api.SubscriptionStatus{}
	}
	f.status[events.NameKey(name)] = api.SubscriptionStatus{Delivery: st, Deliveries: log}
}

// Status implements api.SubscriptionService: what SetStatus set (zero
// figures otherwise), at most deliveries attempts.
func (f *Subscriptions) Status(ctx context.Context, name string, deliveries int) (api.SubscriptionStatus, error) {
	sub, _, err := f.Store.Get(ctx, name)
	if err != nil {
		return api.SubscriptionStatus{}, err
	}
	f.mu.Lock()
	st := f.status[events.NameKey(name)]
	f.mu.Unlock()
	st.Name, st.ProvisioningState = sub.Name, sub.ProvisioningState
	st.Deliveries = slices.Clone(st.Deliveries[:min(deliveries, len(st.Deliveries))])
	return st, nil
}
