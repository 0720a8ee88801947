// Package storetest is the contract every events.SubscriptionStore must
// meet, as one test suite: call Run from each implementation's tests.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/events"
)

// Run runs the contract against stores made by newStore; each subtest gets
// a fresh, empty store.
func Run(t *testing.T, newStore func(t *testing.T) events.SubscriptionStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s events.SubscriptionStore)
	}{
		{"GetMissing", testGetMissing},
		{"CreateGet", testCreateGet},
		{"CreateExisting", testCreateExisting},
		{"NamesIgnoreCase", testNamesIgnoreCase},
		{"InvalidName", testInvalidName},
		{"Update", testUpdate},
		{"UpdateMissing", testUpdateMissing},
		{"Delete", testDelete},
		{"RevisionsNeverReused", testRevisionsNeverReused},
		{"List", testList},
		{"StateRoundTrip", testStateRoundTrip},
		{"NoAliasing", testNoAliasing},
		{"ConcurrentUpdates", testConcurrentUpdates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// sub is a complete, valid subscription with every kind of member set.
func sub(name string) events.Subscription {
	s := events.Subscription{
		Name: name,
		Destination: events.Destination{Properties: events.DestinationProperties{
			EndpointURL: "https://receiver.example.com/hook?code=k", MaxEventsPerBatch: 10,
		}},
		Filter: events.Filter{
			IncludedEventTypes: []events.EventType{events.DeviceConnected, events.DeviceDisconnected},
			SubjectBeginsWith:  "devices/plant1-",
			AdvancedFilters: []events.AdvancedFilter{
				{OperatorType: events.StringIn, Key: "data.tether.reason", Values: []any{"keep-alive", "network"}},
				{OperatorType: events.NumberInRange, Key: "data.tether.connectDurationMs", Values: []any{[]any{0.0, 60000.0}}},
				{OperatorType: events.BoolEquals, Key: "data.tether.tokenRenewal", Value: false},
			},
		},
		EventDeliverySchema: events.CloudEventSchemaV1_0,
		Tether:              events.Options{SuppressRenewals: true},
	}
	s.ApplyDefaults()
	return s
}

// same compares subscriptions by their JSON, the form stores keep.
func same(t *testing.T, got, want events.Subscription) {
	t.Helper()
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		t.Errorf("subscription differs\n got %s\nwant %s", a, b)
	}
}

func testGetMissing(t *testing.T, s events.SubscriptionStore) {
	for _, name := range []string{"nothing-here", "", "not a name", "x"} {
		if _, _, err := s.Get(ctx(t), name); !errors.Is(err, events.ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrNotFound", name, err)
		}
	}
}

func testCreateGet(t *testing.T, s events.SubscriptionStore) {
	in := sub("ops-alerts")
	rev, err := s.Create(ctx(t), in)
	if err != nil || rev == 0 {
		t.Fatalf("Create: %d %v", rev, err)
	}
	got, grev, err := s.Get(ctx(t), "ops-alerts")
	if err != nil || grev != rev {
		t.Fatalf("Get: rev %d (created %d) %v", grev, rev, err)
	}
	same(t, got, in)
	if err := got.Validate(); err != nil {
		t.Errorf("stored subscription no longer valid: %v", err)
	}
}

func testCreateExisting(t *testing.T, s events.SubscriptionStore) {
	if _, err := s.Create(ctx(t), sub("ops-alerts")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ops-alerts", "OPS-Alerts"} {
		if _, err := s.Create(ctx(t), sub(name)); !errors.Is(err, events.ErrExists) {
			t.Errorf("Create(%q) again: %v, want ErrExists", name, err)
		}
	}
}

func testNamesIgnoreCase(t *testing.T, s events.SubscriptionStore) {
	rev, err := s.Create(ctx(t), sub("Ops-Alerts"))
	if err != nil {
		t.Fatal(err)
	}
	got, grev, err := s.Get(ctx(t), "OPS-ALERTS")
	if err != nil || grev != rev || got.Name != "Ops-Alerts" {
		t.Fatalf("Get by other case: %q rev %d %v", got.Name, grev, err)
	}
	u := sub("ops-alerts") // an update may spell the name otherwise
	if _, err := s.Update(ctx(t), u, rev); err != nil {
		t.Fatalf("Update by other case: %v", err)
	}
	if err := s.Delete(ctx(t), "OPS-alerts", 0); err != nil {
		t.Fatalf("Delete by other case: %v", err)
	}
}

func testInvalidName(t *testing.T, s events.SubscriptionStore) {
	for _, name := range []string{"", "a b", "x", "dots.are.keys"} {
		if _, err := s.Create(ctx(t), sub(name)); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("Create(%q): %v, want ErrInvalid", name, err)
		}
	}
}

func testUpdate(t *testing.T, s events.SubscriptionStore) {
	rev, err := s.Create(ctx(t), sub("ops-alerts"))
	if err != nil {
		t.Fatal(err)
	}
	u := sub("ops-alerts")
	u.Destination.Properties.EndpointURL = "https://other.example.com/"
	rev2, err := s.Update(ctx(t), u, rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("Update: rev %d after %d, %v", rev2, rev, err)
	}
	got, grev, _ := s.Get(ctx(t), "ops-alerts")
	if grev != rev2 {
		t.Errorf("revision %d, want %d", grev, rev2)
	}
	same(t, got, u)
	if _, err := s.Update(ctx(t), u, rev); !errors.Is(err, events.ErrConflict) {
		t.Errorf("Update with a stale revision: %v, want ErrConflict", err)
	}
	u.Tether.RenewalGraceSeconds = 30
	rev3, err := s.Update(ctx(t), u, 0)
	if err != nil || rev3 <= rev2 {
		t.Errorf("unconditional Update: rev %d after %d, %v", rev3, rev2, err)
	}
}

func testUpdateMissing(t *testing.T, s events.SubscriptionStore) {
	for _, rev := range []uint64{0, 1, 1000} {
		if _, err := s.Update(ctx(t), sub("nothing-here"), rev); !errors.Is(err, events.ErrNotFound) {
			t.Errorf("Update missing (rev %d): %v, want ErrNotFound", rev, err)
		}
	}
	// Deleted since it was read: not found, not a conflict.
	rev, _ := s.Create(ctx(t), sub("gone-soon"))
	if err := s.Delete(ctx(t), "gone-soon", rev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx(t), sub("gone-soon"), rev); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("Update deleted: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Get(ctx(t), "gone-soon"); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("an update re-created a deleted subscription: %v", err)
	}
}

func testDelete(t *testing.T, s events.SubscriptionStore) {
	if err := s.Delete(ctx(t), "nothing-here", 0); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("Delete missing: %v", err)
	}
	rev, _ := s.Create(ctx(t), sub("ops-alerts"))
	if err := s.Delete(ctx(t), "ops-alerts", rev+100); !errors.Is(err, events.ErrConflict) {
		t.Errorf("Delete with a wrong revision: %v, want ErrConflict", err)
	}
	if err := s.Delete(ctx(t), "ops-alerts", rev); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx(t), "ops-alerts"); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if err := s.Delete(ctx(t), "ops-alerts", 0); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("Delete twice: %v", err)
	}
}

func testRevisionsNeverReused(t *testing.T, s events.SubscriptionStore) {
	rev1, _ := s.Create(ctx(t), sub("ops-alerts"))
	if err := s.Delete(ctx(t), "ops-alerts", 0); err != nil {
		t.Fatal(err)
	}
	rev2, err := s.Create(ctx(t), sub("ops-alerts"))
	if err != nil || rev2 <= rev1 {
		t.Errorf("re-created with revision %d after %d (%v)", rev2, rev1, err)
	}
	// A stale revision from before the delete cannot touch the new one.
	if _, err := s.Update(ctx(t), sub("ops-alerts"), rev1); !errors.Is(err, events.ErrConflict) {
		t.Errorf("Update with the old life's revision: %v, want ErrConflict", err)
	}
}

func testList(t *testing.T, s events.SubscriptionStore) {
	got, err := s.List(ctx(t))
	if err != nil || len(got) != 0 {
		t.Fatalf("empty List: %v %v", got, err)
	}
	for _, name := range []string{"zeta", "Alpha", "mid-1", "gone"} {
		if _, err := s.Create(ctx(t), sub(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx(t), "gone", 0); err != nil {
		t.Fatal(err)
	}
	got, err = s.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range got {
		names = append(names, g.Name)
	}
	if len(names) != 3 || names[0] != "Alpha" || names[1] != "mid-1" || names[2] != "zeta" {
		t.Errorf("List names %v, want [Alpha mid-1 zeta]", names)
	}
	same(t, got[0], sub("Alpha"))
}

func testStateRoundTrip(t *testing.T, s events.SubscriptionStore) {
	in := sub("ops-alerts")
	in.ProvisioningState = events.AwaitingManualAction
	start := time.Date(2026, 3, 4, 5, 6, 7, 800, time.UTC)
	in.Validation = &events.ValidationState{
		Method: events.MethodValidationEvent, Endpoint: in.Destination.Properties.EndpointURL,
		Code: "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", URL: "https://hub.example/validate?code=x",
		StartedAt: start, ExpiresAt: start.Add(5 * time.Minute),
	}
	if _, err := s.Create(ctx(t), in); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Get(ctx(t), "ops-alerts")
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, in)
	if got.Validation == nil || !got.Validation.ExpiresAt.Equal(start.Add(5*time.Minute)) || got.ProvisioningState != events.AwaitingManualAction {
		t.Errorf("state lost: %+v %+v", got.ProvisioningState, got.Validation)
	}
}

func testNoAliasing(t *testing.T, s events.SubscriptionStore) {
	in := sub("ops-alerts")
	if _, err := s.Create(ctx(t), in); err != nil {
		t.Fatal(err)
	}
	in.Filter.IncludedEventTypes[0] = events.DeviceTelemetry
	in.DeadLetterDestination.EndpointType = events.DeadLetterNone
	got, _, _ := s.Get(ctx(t), "ops-alerts")
	same(t, got, sub("ops-alerts"))
	got.Filter.AdvancedFilters[0].Key = "data.changed"
	got.Filter.IncludedEventTypes[1] = events.DeviceCreated
	again, _, _ := s.Get(ctx(t), "ops-alerts")
	same(t, again, sub("ops-alerts"))
}

func testConcurrentUpdates(t *testing.T, s events.SubscriptionStore) {
	rev, err := s.Create(ctx(t), sub("ops-alerts"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := sub("ops-alerts")
			u.Tether.RenewalGraceSeconds = 10 + i
			_, errs[i] = s.Update(ctx(t), u, rev)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, events.ErrConflict):
			t.Errorf("concurrent Update: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d updates with the same revision succeeded, want 1", ok, n)
	}
}
