// Package storetest is the contract every registry.Store must meet, as one
// test suite: call Run from each implementation's tests.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/registry"
)

// Run runs the contract against stores made by newStore; each subtest gets
// a fresh, empty store.
func Run(t *testing.T, newStore func(t *testing.T) registry.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s registry.Store)
	}{
		{"GetMissing", testGetMissing},
		{"CreateGet", testCreateGet},
		{"CreateExisting", testCreateExisting},
		{"OddIDs", testOddIDs},
		{"Update", testUpdate},
		{"UpdateMissing", testUpdateMissing},
		{"Delete", testDelete},
		{"RevisionsNeverReused", testRevisionsNeverReused},
		{"List", testList},
		{"NoAliasing", testNoAliasing},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"Policies", testPolicies},
		{"Twins", testTwins},
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

func device(id string) registry.Device {
	reason := "provisioned by test"
	return registry.Device{
		DeviceID:          id,
		GenerationID:      "639000000000001234",
		Status:            registry.Enabled,
		StatusReason:      &reason,
		StatusUpdatedTime: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC),
		Authentication: registry.Authentication{
			Type: "sas",
			SymmetricKey: registry.SymmetricKey{
				PrimaryKey:   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
				SecondaryKey: "HxwdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=",
			},
		},
		Capabilities: registry.Capabilities{IoTEdge: true},
	}
}

// same compares devices by their JSON, ignoring ETag, so implementations
// that serialise (and lose time.Time internals) compare equal.
func same(t *testing.T, got, want registry.Device) {
	t.Helper()
	got.ETag, want.ETag = "", ""
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("device differs:\n got %s\nwant %s", g, w)
	}
}

func mustCreate(t *testing.T, s registry.Store, d registry.Device) uint64 {
	t.Helper()
	rev, err := s.Create(ctx(t), d)
	if err != nil {
		t.Fatalf("Create(%q): %v", d.DeviceID, err)
	}
	if rev == 0 {
		t.Fatalf("Create(%q) returned revision 0", d.DeviceID)
	}
	return rev
}

func mustGet(t *testing.T, s registry.Store, id string) (registry.Device, uint64) {
	t.Helper()
	d, rev, err := s.Get(ctx(t), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	if d.ETag != registry.ETag(rev) {
		t.Fatalf("Get(%q): ETag %q, want ETag(%d) = %q", id, d.ETag, rev, registry.ETag(rev))
	}
	return d, rev
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func testGetMissing(t *testing.T, s registry.Store) {
	_, _, err := s.Get(ctx(t), "nope")
	wantErr(t, "Get(missing)", err, registry.ErrNotFound)
	_, _, err = s.Get(ctx(t), "")
	wantErr(t, `Get("")`, err, registry.ErrNotFound)
}

func testCreateGet(t *testing.T, s registry.Store) {
	d := device("dev1")
	rev := mustCreate(t, s, d)
	got, grev := mustGet(t, s, "dev1")
	if grev != rev {
		t.Fatalf("Get revision %d, Create said %d", grev, rev)
	}
	same(t, got, d)
}

func testCreateExisting(t *testing.T, s registry.Store) {
	mustCreate(t, s, device("dev1"))
	_, err := s.Create(ctx(t), device("dev1"))
	wantErr(t, "second Create", err, registry.ErrExists)
}

func testOddIDs(t *testing.T, s registry.Store) {
	ids := []string{"a#b*c%d", "x.y.", ".lead", "a:b;c", "$edgeHub", "(1)=@!'?,+_-", "UPPER", "upper", "a..b"}
	for _, id := range ids {
		mustCreate(t, s, device(id))
	}
	for _, id := range ids {
		got, _ := mustGet(t, s, id)
		same(t, got, device(id))
	}
	list, err := s.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(ids) {
		t.Fatalf("List has %d devices, want %d", len(list), len(ids))
	}
}

func testUpdate(t *testing.T, s registry.Store) {
	rev := mustCreate(t, s, device("dev1"))
	d := device("dev1")
	d.Status = registry.Disabled
	d.StatusReason = nil
	rev2, err := s.Update(ctx(t), d, rev)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if rev2 <= rev {
		t.Fatalf("Update revision %d, not above %d", rev2, rev)
	}
	got, grev := mustGet(t, s, "dev1")
	same(t, got, d)
	if grev != rev2 {
		t.Fatalf("Get revision %d, Update said %d", grev, rev2)
	}
	_, err = s.Update(ctx(t), d, rev)
	wantErr(t, "Update with stale revision", err, registry.ErrPreconditionFailed)
	_, err = s.Update(ctx(t), d, 0)
	wantErr(t, "Update with revision 0", err, registry.ErrPreconditionFailed)
	got, _ = mustGet(t, s, "dev1")
	same(t, got, d)
}

func testUpdateMissing(t *testing.T, s registry.Store) {
	_, err := s.Update(ctx(t), device("ghost"), 1)
	wantErr(t, "Update(missing)", err, registry.ErrNotFound)
	_, err = s.Update(ctx(t), device("ghost"), 0)
	wantErr(t, "Update(missing, 0)", err, registry.ErrNotFound)
	// Must not have created it.
	_, _, err = s.Get(ctx(t), "ghost")
	wantErr(t, "Get after Update(missing)", err, registry.ErrNotFound)
}

func testDelete(t *testing.T, s registry.Store) {
	rev := mustCreate(t, s, device("dev1"))
	err := s.Delete(ctx(t), "dev1", rev+1000)
	wantErr(t, "Delete with wrong revision", err, registry.ErrPreconditionFailed)
	if err := s.Delete(ctx(t), "dev1", rev); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, _, err = s.Get(ctx(t), "dev1")
	wantErr(t, "Get after Delete", err, registry.ErrNotFound)
	wantErr(t, "Delete again", s.Delete(ctx(t), "dev1", 0), registry.ErrNotFound)
	wantErr(t, "Delete again with revision", s.Delete(ctx(t), "dev1", rev), registry.ErrNotFound)
	_, err = s.Update(ctx(t), device("dev1"), rev)
	wantErr(t, "Update after Delete", err, registry.ErrNotFound)

	mustCreate(t, s, device("dev2"))
	if err := s.Delete(ctx(t), "dev2", 0); err != nil {
		t.Fatalf("Delete(any revision): %v", err)
	}
	wantErr(t, "Delete(never existed)", s.Delete(ctx(t), "never", 0), registry.ErrNotFound)
}

func testRevisionsNeverReused(t *testing.T, s registry.Store) {
	seen := map[uint64]bool{}
	note := func(rev uint64) {
		if seen[rev] {
			t.Fatalf("revision %d handed out twice", rev)
		}
		seen[rev] = true
	}
	for range 3 {
		rev := mustCreate(t, s, device("dev1"))
		note(rev)
		rev2, err := s.Update(ctx(t), device("dev1"), rev)
		if err != nil {
			t.Fatal(err)
		}
		note(rev2)
		if err := s.Delete(ctx(t), "dev1", rev2); err != nil {
			t.Fatal(err)
		}
	}
	// An etag read before a delete must not match the re-created device.
	old := mustCreate(t, s, device("dev1"))
	if err := s.Delete(ctx(t), "dev1", old); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, device("dev1"))
	_, err := s.Update(ctx(t), device("dev1"), old)
	wantErr(t, "Update with a revision from before the re-create", err, registry.ErrPreconditionFailed)
}

func testList(t *testing.T, s registry.Store) {
	list, err := s.List(ctx(t))
	if err != nil {
		t.Fatalf("List(empty): %v", err)
	}
	if len(list) != 0 {
		t.Fatalf("List(empty) = %d devices", len(list))
	}
	revs := map[string]uint64{}
	for _, id := range []string{"c", "a", "b"} {
		revs[id] = mustCreate(t, s, device(id))
	}
	if err := s.Delete(ctx(t), "b", 0); err != nil {
		t.Fatal(err)
	}
	list, err = s.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]registry.Device{}
	for _, d := range list {
		got[d.DeviceID] = d
	}
	if len(list) != 2 || len(got) != 2 {
		t.Fatalf("List = %d devices (%v), want a and c", len(list), got)
	}
	for _, id := range []string{"a", "c"} {
		d, ok := got[id]
		if !ok {
			t.Fatalf("List lacks %s", id)
		}
		if d.ETag != registry.ETag(revs[id]) {
			t.Fatalf("List: %s has ETag %q, want %q", id, d.ETag, registry.ETag(revs[id]))
		}
		same(t, d, device(id))
	}
}

func testNoAliasing(t *testing.T, s registry.Store) {
	d := device("dev1")
	mustCreate(t, s, d)
	*d.StatusReason = "changed by the caller after Create"
	got, _ := mustGet(t, s, "dev1")
	if *got.StatusReason != "provisioned by test" {
		t.Fatalf("store aliases the caller's device: statusReason %q", *got.StatusReason)
	}
	*got.StatusReason = "changed by the caller after Get"
	again, _ := mustGet(t, s, "dev1")
	if *again.StatusReason != "provisioned by test" {
		t.Fatalf("store aliases the device it returned: statusReason %q", *again.StatusReason)
	}
}

func testConcurrentUpdates(t *testing.T, s registry.Store) {
	rev := mustCreate(t, s, device("dev1"))
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.Update(ctx(t), device("dev1"), rev)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, registry.ErrPreconditionFailed):
			t.Fatalf("concurrent Update: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d updates with the same revision succeeded, want exactly 1", ok, n)
	}
}

func testPolicies(t *testing.T, s registry.Store) {
	ps, err := s.ListPolicies(ctx(t))
	if err != nil {
		t.Fatalf("ListPolicies(empty): %v", err)
	}
	if len(ps) != 0 {
		t.Fatalf("ListPolicies(empty) = %v", ps)
	}
	owner := registry.Policy{Name: "iothubowner", PrimaryKey: "cA==", SecondaryKey: "cw==",
		Rights: registry.RegistryRead | registry.RegistryWrite | registry.ServiceConnect | registry.DeviceConnect}
	svc := registry.Policy{Name: "service", PrimaryKey: "cA==", SecondaryKey: "cw==", Rights: registry.ServiceConnect}
	for _, p := range []registry.Policy{owner, svc} {
		if err := s.PutPolicy(ctx(t), p); err != nil {
			t.Fatalf("PutPolicy(%s): %v", p.Name, err)
		}
	}
	svc.PrimaryKey = "bmV3"
	if err := s.PutPolicy(ctx(t), svc); err != nil {
		t.Fatalf("PutPolicy(replace): %v", err)
	}
	ps, err = s.ListPolicies(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]registry.Policy{}
	for _, p := range ps {
		got[p.Name] = p
	}
	if len(ps) != 2 || got["iothubowner"] != owner || got["service"] != svc {
		t.Fatalf("ListPolicies = %+v, want %+v and %+v", ps, owner, svc)
	}
	if err := s.DeletePolicy(ctx(t), "service"); err != nil {
		t.Fatalf("DeletePolicy: %v", err)
	}
	if err := s.DeletePolicy(ctx(t), "service"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("DeletePolicy of a deleted policy: %v, want ErrNotFound", err)
	}
	if ps, err = s.ListPolicies(ctx(t)); err != nil || len(ps) != 1 || ps[0] != owner {
		t.Fatalf("ListPolicies after delete = %+v, %v; want only %+v", ps, err, owner)
	}
	// A deleted policy can be created again.
	if err := s.PutPolicy(ctx(t), svc); err != nil {
		t.Fatalf("PutPolicy after delete: %v", err)
	}
	if ps, err = s.ListPolicies(ctx(t)); err != nil || len(ps) != 2 {
		t.Fatalf("ListPolicies after re-create = %+v, %v", ps, err)
	}
}

// Twins: stored only once written, compare-and-set by revision, listed
// with their ids, gone after DeleteTwin (and writable afresh).
func testTwins(t *testing.T, s registry.Store) {
	c := ctx(t)
	if _, _, err := s.GetTwin(c, "t1"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetTwin of a never written twin: %v", err)
	}
	rev, err := s.PutTwin(c, "t1", []byte(`{"v":1}`), 0)
	if err != nil || rev == 0 {
		t.Fatalf("first PutTwin: %d %v", rev, err)
	}
	if _, err := s.PutTwin(c, "t1", []byte(`{"v":9}`), 0); !errors.Is(err, registry.ErrPreconditionFailed) {
		t.Errorf("a second create: %v", err)
	}
	rev2, err := s.PutTwin(c, "t1", []byte(`{"v":2}`), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("update: %d %v", rev2, err)
	}
	if _, err := s.PutTwin(c, "t1", []byte(`{"v":3}`), rev); !errors.Is(err, registry.ErrPreconditionFailed) {
		t.Errorf("update at a stale revision: %v", err)
	}
	odd := "dev/with %2F and spaces#*"
	if _, err := s.PutTwin(c, odd, []byte(`{"odd":true}`), 0); err != nil {
		t.Fatal(err)
	}
	doc, got, err := s.GetTwin(c, "t1")
	if err != nil || got != rev2 || string(doc) != `{"v":2}` {
		t.Errorf("GetTwin: %s %d %v", doc, got, err)
	}
	list, err := s.ListTwins(c)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, tw := range list {
		seen[tw.DeviceID] = string(tw.Doc)
	}
	if len(list) != 2 || seen["t1"] != `{"v":2}` || seen[odd] != `{"odd":true}` {
		t.Errorf("ListTwins: %v", seen)
	}
	if err := s.DeleteTwin(c, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTwin(c, "never-written"); err != nil {
		t.Errorf("DeleteTwin of a missing twin: %v", err)
	}
	if _, _, err := s.GetTwin(c, "t1"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("GetTwin after delete: %v", err)
	}
	if _, err := s.PutTwin(c, "t1", []byte(`{"v":"new"}`), 0); err != nil {
		t.Errorf("create after delete: %v", err)
	}
	if list, _ := s.ListTwins(c); len(list) != 2 {
		t.Errorf("ListTwins after delete and re-create: %d twins", len(list))
	}
}
