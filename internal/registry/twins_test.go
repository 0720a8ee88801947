package registry_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
	"github.com/tether-hub/tether/internal/twin"
)

func patchReported(patch string) func(*twin.Twin) ([]byte, error) {
	return func(t *twin.Twin) ([]byte, error) {
		_, err := t.PatchReported([]byte(patch), time.Now())
		return nil, err
	}
}

func TestTwinOfNewDevice(t *testing.T) {
	f := newFixture(t)
	if _, ok := f.reg.Twin("d1"); ok {
		t.Fatal("a twin for a device that does not exist")
	}
	f.reg.Create(ctx, registry.Device{DeviceID: "d1"}, "test")
	tw, ok := f.reg.Twin("d1")
	if !ok || tw.Desired.Version != 1 || tw.Reported.Version != 1 || len(tw.Tags) != 0 {
		t.Fatalf("new twin: %+v %v", tw, ok)
	}
	if list, _ := f.store.ListTwins(ctx); len(list) != 0 {
		t.Errorf("a never written twin was stored: %v", list)
	}
	if _, err := f.reg.UpdateTwin(ctx, "nope", patchReported(`{"a":1}`)); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("update of a missing device's twin: %v", err)
	}
}

// Writes are stored, survive a restart, and a rejected patch changes
// nothing.
func TestTwinWritesPersist(t *testing.T) {
	f := newFixture(t)
	f.reg.Create(ctx, registry.Device{DeviceID: "d1"}, "test")
	tw, err := f.reg.UpdateTwin(ctx, "d1", patchReported(`{"temp":21,"fw":{"v":"1.0"}}`))
	if err != nil || tw.Reported.Version != 2 {
		t.Fatalf("%v %+v", err, tw)
	}
	var te *twin.Error
	if _, err := f.reg.UpdateTwin(ctx, "d1", patchReported(`[1,2]`)); !errors.As(err, &te) || te.Status != 400 {
		t.Fatalf("bad patch: %v", err)
	}
	again, err := registry.New(ctx, f.store, registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	tw2, _ := again.Twin("d1")
	if string(tw2.DeviceJSON()) != string(tw.DeviceJSON()) || tw2.Reported.Version != 2 {
		t.Errorf("after a restart:\n%s\nwant\n%s", tw2.DeviceJSON(), tw.DeviceJSON())
	}
}

// Two hub nodes on one store: the second node's cache is stale, its
// compare-and-set fails, it reads the twin again and applies its patch
// on top, so neither write is lost.
func TestTwinConcurrentNodes(t *testing.T) {
	store := memstore.New()
	a, err := registry.New(ctx, store, registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	a.Create(ctx, registry.Device{DeviceID: "d1"}, "test")
	b, err := registry.New(ctx, store, registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.UpdateTwin(ctx, "d1", patchReported(`{"fromA":1}`)); err != nil {
		t.Fatal(err)
	}
	tw, err := b.UpdateTwin(ctx, "d1", patchReported(`{"fromB":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tw.Reported.Values["fromA"]; !ok || tw.Reported.Version != 3 {
		t.Errorf("node B lost node A's write: %s (version %d)", tw.DeviceJSON(), tw.Reported.Version)
	}
}

// Concurrent writers of one twin on one node are serialised: every patch
// counts once.
func TestTwinConcurrentWriters(t *testing.T) {
	f := newFixture(t)
	f.reg.Create(ctx, registry.Device{DeviceID: "d1"}, "test")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := f.reg.UpdateTwin(ctx, "d1", patchReported(fmt.Sprintf(`{"k%d":%d}`, i, i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	tw, _ := f.reg.Twin("d1")
	if len(tw.Reported.Values) != 20 || tw.Reported.Version != 21 {
		t.Errorf("%d members, version %d", len(tw.Reported.Values), tw.Reported.Version)
	}
}

// OnTwinChange gets each write in order, with the desired push when
// desired properties changed.
func TestTwinChangeHook(t *testing.T) {
	var mu sync.Mutex
	var got []registry.TwinChange
	reg, err := registry.New(ctx, memstore.New(), registry.Options{HubName: hub, OnTwinChange: func(c registry.TwinChange) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	reg.Create(ctx, registry.Device{DeviceID: "d1"}, "test")
	reg.UpdateTwin(ctx, "d1", patchReported(`{"r":1}`))
	reg.UpdateTwin(ctx, "d1", func(t *twin.Twin) ([]byte, error) {
		return t.ServicePatch([]byte(`{"properties":{"desired":{"x":1}}}`), time.Now())
	})
	if len(got) != 2 || got[0].Desired != nil || got[1].DesiredVersion != 2 || string(got[1].Desired) == "" {
		t.Fatalf("changes: %+v", got)
	}
}

// Deleting a device deletes its twin; a device created again with the
// same id starts with a new one.
func TestTwinGoesWithDevice(t *testing.T) {
	f := newFixture(t)
	f.reg.Create(ctx, registry.Device{DeviceID: "d1"}, "test")
	f.reg.UpdateTwin(ctx, "d1", patchReported(`{"old":true}`))
	if err := f.reg.Delete(ctx, "d1", "*", "test"); err != nil {
		t.Fatal(err)
	}
	if list, _ := f.store.ListTwins(ctx); len(list) != 0 {
		t.Errorf("twin left in the store: %v", list)
	}
	f.reg.Create(ctx, registry.Device{DeviceID: "d1"}, "test")
	tw, _ := f.reg.Twin("d1")
	if len(tw.Reported.Values) != 0 {
		t.Errorf("a re-created device got the old twin: %s", tw.DeviceJSON())
	}
}

// A stored twin without a device (a delete whose twin removal failed) is
// dropped at start.
func TestOrphanTwinDroppedAtStart(t *testing.T) {
	store := memstore.New()
	store.PutTwin(ctx, "ghost", []byte(`{}`), 0)
	if _, err := registry.New(ctx, store, registry.Options{HubName: hub}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.GetTwin(ctx, "ghost"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("orphan twin kept: %v", err)
	}
}

// A corrupt stored twin stops the start with a message naming it.
func TestCorruptTwinRefused(t *testing.T) {
	store := memstore.New()
	store.Create(ctx, registry.Device{DeviceID: "d1", Status: registry.Enabled})
	store.PutTwin(ctx, "d1", []byte(`{"not a twin`), 0)
	_, err := registry.New(ctx, store, registry.Options{HubName: hub})
	if err == nil || !strings.Contains(err.Error(), "d1") || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt twin: %v", err)
	}
}

func TestDeviceIDsSorted(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"c", "a", "b"} {
		f.reg.Create(ctx, registry.Device{DeviceID: id}, "test")
	}
	if got := f.reg.DeviceIDs(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("ids %v", got)
	}
	f.reg.Delete(ctx, "b", "*", "test")
	f.reg.Create(ctx, registry.Device{DeviceID: "0"}, "test")
	if got := f.reg.DeviceIDs(); !slices.Equal(got, []string{"0", "a", "c"}) {
		t.Errorf("ids after create and delete %v", got)
	}
}

func TestTwinInfo(t *testing.T) {
	f := newFixture(t)
	reason := "spare"
	d, _ := f.reg.Create(ctx, registry.Device{DeviceID: "d1", Status: registry.Disabled, StatusReason: &reason}, "test")
	info, ok := f.reg.TwinInfo("d1")
	if !ok || info.Status != "disabled" || info.StatusReason != "spare" || info.DeviceETag != d.ETag ||
		info.ConnectionState != "Disconnected" || info.AuthenticationType != "sas" {
		t.Errorf("%+v", info)
	}
	if _, ok := f.reg.TwinInfo("nope"); ok {
		t.Error("info for a missing device")
	}
}
