package registry_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
)

const hub = "hub.example"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a registry on a memstore with a settable clock and a record
// of the changes it reported.
type fixture struct {
	reg   *registry.Registry
	store *memstore.Store
	mu    sync.Mutex
	now   time.Time
	chg   []registry.Change
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: memstore.New(), now: t0}
	var err error
	f.reg, err = registry.New(context.Background(), f.store, registry.Options{
		HubName:  hub,
		Now:      func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
		OnChange: func(c registry.Change) { f.mu.Lock(); f.chg = append(f.chg, c); f.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

func (f *fixture) changes() []registry.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]registry.Change(nil), f.chg...)
}

var ctx = context.Background()

func wantCode(t *testing.T, err error, code string, status int, sentinel error) {
	t.Helper()
	var re *registry.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want *registry.Error %s", err, err, code)
	}
	if re.Code != code || re.Status != status {
		t.Fatalf("error %s/%d (%s), want %s/%d", re.Code, re.Status, re.Message, code, status)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v does not unwrap to %v", err, sentinel)
	}
}

func TestDefaultPolicies(t *testing.T) {
	f := newFixture(t)
	want := map[string]registry.Rights{
		"iothubowner":       registry.RegistryRead | registry.RegistryWrite | registry.ServiceConnect | registry.DeviceConnect,
		"service":           registry.ServiceConnect,
		"device":            registry.DeviceConnect,
		"registryRead":      registry.RegistryRead,
		"registryReadWrite": registry.RegistryRead | registry.RegistryWrite,
	}
	ps := f.reg.Policies()
	if len(ps) != len(want) {
		t.Fatalf("%d policies, want %d", len(ps), len(want))
	}
	for _, p := range ps {
		if want[p.Name] != p.Rights {
			t.Errorf("policy %s has rights %q, want %q", p.Name, p.Rights, want[p.Name])
		}
		for _, k := range []string{p.PrimaryKey, p.SecondaryKey} {
			raw, err := base64.StdEncoding.DecodeString(k)
			if err != nil || len(raw) != 32 {
				t.Errorf("policy %s key %q is not base64 of 32 bytes", p.Name, k)
			}
		}
		if p.PrimaryKey == p.SecondaryKey {
			t.Errorf("policy %s has equal keys", p.Name)
		}
	}

	// A second start on the same store keeps the keys.
	reg2, err := registry.New(ctx, f.store, registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	owner1, _ := f.reg.Policy("iothubowner")
	owner2, ok := reg2.Policy("iothubowner")
	if !ok || owner1 != owner2 {
		t.Fatalf("restart changed the owner policy: %+v → %+v", owner1, owner2)
	}
}

func TestCreateDefaults(t *testing.T) {
	f := newFixture(t)
	d, err := f.reg.Create(ctx, registry.Device{DeviceID: "dev1"}, "iothubowner")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != registry.Enabled {
		t.Errorf("status %q, want enabled", d.Status)
	}
	if len(d.GenerationID) != 18 || strings.Trim(d.GenerationID, "0123456789") != "" {
		t.Errorf("generationId %q is not an 18-digit number", d.GenerationID)
	}
	if d.ETag == "" {
		t.Error("no etag")
	}
	if d.Authentication.Type != "sas" {
		t.Errorf("auth type %q", d.Authentication.Type)
	}
	k := d.Authentication.SymmetricKey
	if k.PrimaryKey == "" || k.SecondaryKey == "" || k.PrimaryKey == k.SecondaryKey {
		t.Errorf("keys not generated: %+v", k)
	}
	if d.ConnectionState != "Disconnected" {
		t.Errorf("connectionState %q", d.ConnectionState)
	}
	if !d.StatusUpdatedTime.IsZero() {
		t.Errorf("statusUpdatedTime %v on create, want zero like IoT Hub", d.StatusUpdatedTime)
	}
	cached, ok := f.reg.Device("dev1")
	if !ok || cached.Authentication.SymmetricKey != k || cached.ETag != d.ETag {
		t.Fatalf("cache = %+v, %v", cached, ok)
	}
	got, err := f.reg.Get(ctx, "dev1")
	if err != nil || got.ETag != d.ETag || got.GenerationID != d.GenerationID {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func TestCreateValidation(t *testing.T) {
	key16 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	key64 := base64.StdEncoding.EncodeToString(make([]byte, 64))
	long := strings.Repeat("x", 129)
	sha1Print := strings.Repeat("a1", 20)
	tests := []struct {
		name string
		d    registry.Device
		msg  string // substring of the error; "" = valid
	}{
		{"all allowed punctuation", registry.Device{DeviceID: "a-.+%_#*?!(),=@$':;Z9"}, ""},
		{"128 chars", registry.Device{DeviceID: long[:128]}, ""},
		{"129 chars", registry.Device{DeviceID: long}, "limit is 128"},
		{"empty id", registry.Device{}, "deviceId is required"},
		{"slash", registry.Device{DeviceID: "a/b"}, `character '/'`},
		{"space", registry.Device{DeviceID: "a b"}, "character ' '"},
		{"non-ASCII", registry.Device{DeviceID: "café"}, "character"},
		{"status upper case", registry.Device{DeviceID: "d", Status: "Disabled"}, ""},
		{"bad status", registry.Device{DeviceID: "d", Status: "paused"}, "use enabled or disabled"},
		{"reason 128 runes", registry.Device{DeviceID: "d", StatusReason: ptr(strings.Repeat("é", 128))}, ""},
		{"reason too long", registry.Device{DeviceID: "d", StatusReason: ptr(strings.Repeat("é", 129))}, "statusReason is 129 characters"},
		{"selfSigned without thumbprint", registry.Device{DeviceID: "d", Authentication: registry.Authentication{Type: "selfSigned"}}, "needs x509Thumbprint.primaryThumbprint"},
		{"selfSigned", registry.Device{DeviceID: "d", Authentication: registry.Authentication{Type: "SELFSIGNED", X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha1Print)}}}, ""},
		{"selfSigned inferred", registry.Device{DeviceID: "d", Authentication: registry.Authentication{X509Thumbprint: registry.X509Thumbprint{SecondaryThumbprint: ptr(sha1Print)}}}, ""},
		{"selfSigned with keys", registry.Device{DeviceID: "d", Authentication: registry.Authentication{Type: "selfSigned", SymmetricKey: registry.SymmetricKey{PrimaryKey: key16}, X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha1Print)}}}, "symmetricKey is set"},
		{"short thumbprint", registry.Device{DeviceID: "d", Authentication: registry.Authentication{X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr("AB")}}}, "x509Thumbprint.primaryThumbprint: invalid thumbprint"},
		{"sas with thumbprint", registry.Device{DeviceID: "d", Authentication: registry.Authentication{Type: "sas", X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha1Print)}}}, "x509Thumbprint is set, but authentication type sas"},
		{"certificateAuthority", registry.Device{DeviceID: "d", Authentication: registry.Authentication{Type: "certificateAuthority"}}, ""},
		{"certificateAuthority with thumbprint", registry.Device{DeviceID: "d", Authentication: registry.Authentication{Type: "certificateAuthority", X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha1Print)}}}, "takes no keys or thumbprints"},
		{"unknown auth", registry.Device{DeviceID: "d", Authentication: registry.Authentication{Type: "none"}}, "use sas, selfSigned or certificateAuthority"},
		{"given keys", registry.Device{DeviceID: "d", Authentication: registry.Authentication{SymmetricKey: registry.SymmetricKey{PrimaryKey: key16, SecondaryKey: key64}}}, ""},
		{"key not base64", registry.Device{DeviceID: "d", Authentication: registry.Authentication{SymmetricKey: registry.SymmetricKey{PrimaryKey: "not base64!"}}}, "primaryKey is not valid base64"},
		{"key too short", registry.Device{DeviceID: "d", Authentication: registry.Authentication{SymmetricKey: registry.SymmetricKey{SecondaryKey: "AAAA"}}}, "secondaryKey decodes to 3 bytes"},
		{"key too long", registry.Device{DeviceID: "d", Authentication: registry.Authentication{SymmetricKey: registry.SymmetricKey{PrimaryKey: base64.StdEncoding.EncodeToString(make([]byte, 65))}}}, "65 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			got, err := f.reg.Create(ctx, tc.d, "iothubowner")
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				if got.Status != registry.Enabled && got.Status != registry.Disabled {
					t.Fatalf("status %q not normalised", got.Status)
				}
				if k := tc.d.Authentication.SymmetricKey.PrimaryKey; k != "" && got.Authentication.SymmetricKey.PrimaryKey != k {
					t.Fatalf("given key not kept")
				}
				return
			}
			wantCode(t, err, registry.CodeArgumentInvalid, http.StatusBadRequest, registry.ErrInvalid)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q lacks %q", err, tc.msg)
			}
			if len(f.changes()) != 0 {
				t.Fatal("a refused write reported a change")
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestCreateExisting(t *testing.T) {
	f := newFixture(t)
	if _, err := f.reg.Create(ctx, registry.Device{DeviceID: "d"}, ""); err != nil {
		t.Fatal(err)
	}
	_, err := f.reg.Create(ctx, registry.Device{DeviceID: "d"}, "")
	wantCode(t, err, registry.CodeDeviceAlreadyExists, http.StatusConflict, registry.ErrExists)
}

func TestReplace(t *testing.T) {
	f := newFixture(t)
	orig, err := f.reg.Create(ctx, registry.Device{DeviceID: "d"}, "iothubowner")
	if err != nil {
		t.Fatal(err)
	}
	f.advance(time.Minute)

	// The device as read back, status changed, read-only fields set to
	// rubbish: they are ignored.
	in := orig
	in.Status = "DISABLED"
	in.StatusReason = ptr("stolen")
	in.GenerationID = "1"
	in.ConnectionState = "Connected"
	in.CloudToDeviceMessageCount = 7
	in.Authentication.SymmetricKey = registry.SymmetricKey{} // empty keys keep the current ones
	got, err := f.reg.Replace(ctx, in, `"`+orig.ETag+`"`, "registryReadWrite")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != registry.Disabled || *got.StatusReason != "stolen" {
		t.Errorf("status %q reason %v", got.Status, got.StatusReason)
	}
	if got.GenerationID != orig.GenerationID || got.ConnectionState != "Disconnected" || got.CloudToDeviceMessageCount != 0 {
		t.Errorf("read-only fields taken from input: %+v", got)
	}
	if got.Authentication.SymmetricKey != orig.Authentication.SymmetricKey {
		t.Errorf("keys changed: %+v", got.Authentication.SymmetricKey)
	}
	if got.ETag == orig.ETag {
		t.Error("etag not regenerated")
	}
	if !got.StatusUpdatedTime.Equal(t0.Add(time.Minute)) {
		t.Errorf("statusUpdatedTime %v, want %v", got.StatusUpdatedTime, t0.Add(time.Minute))
	}
	if c, _ := f.reg.Device("d"); c.Status != registry.Disabled {
		t.Error("cache not updated")
	}

	// Same status again: statusUpdatedTime stays.
	f.advance(time.Minute)
	got2, err := f.reg.Replace(ctx, got, "*", "")
	if err != nil {
		t.Fatal(err)
	}
	if !got2.StatusUpdatedTime.Equal(got.StatusUpdatedTime) {
		t.Errorf("statusUpdatedTime moved without a status change")
	}

	// Stale etag, unquoted or quoted.
	for _, stale := range []string{orig.ETag, `"` + orig.ETag + `"`, `W/"` + orig.ETag + `"`} {
		_, err = f.reg.Replace(ctx, in, stale, "")
		wantCode(t, err, registry.CodePreconditionFailed, http.StatusPreconditionFailed, registry.ErrPreconditionFailed)
	}

	// Missing device.
	_, err = f.reg.Replace(ctx, registry.Device{DeviceID: "ghost"}, "*", "")
	wantCode(t, err, registry.CodeDeviceNotFound, http.StatusNotFound, registry.ErrNotFound)

	// Invalid input.
	_, err = f.reg.Replace(ctx, registry.Device{DeviceID: "d", Status: "off"}, "*", "")
	wantCode(t, err, registry.CodeArgumentInvalid, http.StatusBadRequest, registry.ErrInvalid)

	// New keys replace the old ones.
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	got3, err := f.reg.Replace(ctx, registry.Device{DeviceID: "d", Authentication: registry.Authentication{SymmetricKey: registry.SymmetricKey{PrimaryKey: key}}}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got3.Authentication.SymmetricKey.PrimaryKey != key || got3.Authentication.SymmetricKey.SecondaryKey != orig.Authentication.SymmetricKey.SecondaryKey {
		t.Errorf("keys after rotation: %+v", got3.Authentication.SymmetricKey)
	}
	if got3.Status != registry.Disabled {
		t.Errorf("empty status changed it to %q", got3.Status)
	}
	if c, _ := f.reg.Device("d"); c.Authentication.SymmetricKey.PrimaryKey != key {
		t.Error("auth cache still has the old key")
	}
}

func TestDelete(t *testing.T) {
	f := newFixture(t)
	d, err := f.reg.Create(ctx, registry.Device{DeviceID: "d"}, "")
	if err != nil {
		t.Fatal(err)
	}
	err = f.reg.Delete(ctx, "d", `"AAAA"`, "")
	wantCode(t, err, registry.CodePreconditionFailed, http.StatusPreconditionFailed, registry.ErrPreconditionFailed)
	if err := f.reg.Delete(ctx, "d", `"`+d.ETag+`"`, "iothubowner"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.reg.Device("d"); ok {
		t.Error("still cached after delete")
	}
	_, err = f.reg.Get(ctx, "d")
	wantCode(t, err, registry.CodeDeviceNotFound, http.StatusNotFound, registry.ErrNotFound)
	err = f.reg.Delete(ctx, "d", "*", "")
	wantCode(t, err, registry.CodeDeviceNotFound, http.StatusNotFound, registry.ErrNotFound)

	// Re-created: new generation id, and the old etag does not match.
	d2, err := f.reg.Create(ctx, registry.Device{DeviceID: "d"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if d2.GenerationID == d.GenerationID || d2.ETag == d.ETag {
		t.Errorf("re-created device reuses generationId/etag: %s %s", d2.GenerationID, d2.ETag)
	}
	err = f.reg.Delete(ctx, "d", d.ETag, "")
	wantCode(t, err, registry.CodePreconditionFailed, http.StatusPreconditionFailed, registry.ErrPreconditionFailed)
}

func TestOnChange(t *testing.T) {
	f := newFixture(t)
	d, _ := f.reg.Create(ctx, registry.Device{DeviceID: "d"}, "iothubowner")
	f.advance(time.Second)
	d.Status = registry.Disabled
	if _, err := f.reg.Replace(ctx, d, "*", "registryReadWrite"); err != nil {
		t.Fatal(err)
	}
	f.advance(time.Second)
	if err := f.reg.Delete(ctx, "d", "", "iothubowner"); err != nil {
		t.Fatal(err)
	}
	_, _ = f.reg.Create(ctx, registry.Device{DeviceID: "bad id"}, "") // refused: no change
	chg := f.changes()
	wantOps := []registry.Op{registry.OpCreated, registry.OpUpdated, registry.OpDeleted}
	wantCallers := []string{"iothubowner", "registryReadWrite", "iothubowner"}
	if len(chg) != len(wantOps) {
		t.Fatalf("%d changes, want %d: %+v", len(chg), len(wantOps), chg)
	}
	ids := map[string]bool{}
	for i, c := range chg {
		if c.Op != wantOps[i] || c.Caller != wantCallers[i] || c.Hub != hub || c.DeviceID != "d" || c.Device.DeviceID != "d" {
			t.Errorf("change %d = %+v", i, c)
		}
		if !c.Time.Equal(t0.Add(time.Duration(i) * time.Second)) {
			t.Errorf("change %d time %v", i, c.Time)
		}
		if c.Device.Authentication.SymmetricKey != (registry.SymmetricKey{}) {
			t.Errorf("change %d carries keys", i)
		}
		if c.ID == "" || ids[c.ID] {
			t.Errorf("change %d id %q not unique", i, c.ID)
		}
		ids[c.ID] = true
	}
	if chg[1].Device.Status != registry.Disabled || chg[2].Device.Status != registry.Disabled {
		t.Errorf("update/delete changes do not carry the device state: %+v", chg[1:])
	}
	// Blanking keys in the change must not blank them in the registry.
	d3, _ := f.reg.Create(ctx, registry.Device{DeviceID: "e"}, "")
	if c, _ := f.reg.Device("e"); c.Authentication.SymmetricKey != d3.Authentication.SymmetricKey || c.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Error("the cache lost the keys")
	}
}

func TestLiveStateAndList(t *testing.T) {
	upd := t0.Add(-time.Hour)
	act := t0.Add(-time.Minute)
	reg, err := registry.New(ctx, memstore.New(), registry.Options{
		HubName: hub,
		LiveState: func(id string) (bool, time.Time, time.Time) {
			return id == "b", upd, act
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c", "a", "b"} {
		if _, err := reg.Create(ctx, registry.Device{DeviceID: id}, ""); err != nil {
			t.Fatal(err)
		}
	}
	list, err := reg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range list {
		ids = append(ids, d.DeviceID)
		want := "Disconnected"
		if d.DeviceID == "b" {
			want = "Connected"
		}
		if d.ConnectionState != want || !d.ConnectionStateUpdatedTime.Equal(upd) || !d.LastActivityTime.Equal(act) {
			t.Errorf("%s: %s %v %v", d.DeviceID, d.ConnectionState, d.ConnectionStateUpdatedTime, d.LastActivityTime)
		}
	}
	if strings.Join(ids, ",") != "a,b,c" {
		t.Errorf("List order %v", ids)
	}
}

func TestCacheLoadedAtStart(t *testing.T) {
	store := memstore.New()
	reg1, err := registry.New(ctx, store, registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	d, err := reg1.Create(ctx, registry.Device{DeviceID: "d"}, "")
	if err != nil {
		t.Fatal(err)
	}
	reg2, err := registry.New(ctx, store, registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := reg2.Device("d")
	if !ok || c.Authentication.SymmetricKey != d.Authentication.SymmetricKey || c.ETag != d.ETag {
		t.Fatalf("reloaded cache = %+v, %v", c, ok)
	}
	// The returned copy is the caller's own.
	c.StatusReason = ptr("x")
	c.Authentication.SymmetricKey.PrimaryKey = "changed"
	if c2, _ := reg2.Device("d"); c2.StatusReason != nil || c2.Authentication.SymmetricKey.PrimaryKey == "changed" {
		t.Fatal("Device returns an alias of the cache")
	}
}

func TestConcurrentWrites(t *testing.T) {
	f := newFixture(t)
	if _, err := f.reg.Create(ctx, registry.Device{DeviceID: "d"}, ""); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			st := registry.Enabled
			if i%2 == 0 {
				st = registry.Disabled
			}
			if _, err := f.reg.Replace(ctx, registry.Device{DeviceID: "d", Status: st}, "*", ""); err != nil {
				t.Error(err)
			}
			f.reg.Device("d")
		})
	}
	wg.Wait()
	stored, err := f.reg.Get(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	cached, _ := f.reg.Device("d")
	if cached.ETag != stored.ETag || cached.Status != stored.Status {
		t.Fatalf("cache %s/%s differs from store %s/%s", cached.ETag, cached.Status, stored.ETag, stored.Status)
	}
	if n := len(f.changes()); n != 21 {
		t.Fatalf("%d changes, want 21", n)
	}
}

func TestRights(t *testing.T) {
	r := registry.RegistryRead | registry.ServiceConnect
	if s := r.String(); s != "RegistryRead, ServiceConnect" {
		t.Fatalf("String = %q", s)
	}
	back, err := registry.ParseRights("registryread,ServiceConnect")
	if err != nil || back != r {
		t.Fatalf("ParseRights = %v, %v", back, err)
	}
	if _, err := registry.ParseRights("RegistryRead, Admin"); err == nil {
		t.Fatal("ParseRights accepted Admin")
	}
	b, _ := registry.Policy{Name: "p", Rights: r}.Rights.MarshalText()
	if string(b) != "RegistryRead, ServiceConnect" {
		t.Fatalf("MarshalText = %s", b)
	}
}

func TestETag(t *testing.T) {
	if got := registry.ETag(8815808); got != "ODgxNTgwOA==" {
		t.Fatalf("ETag(8815808) = %s, want IoT Hub's ODgxNTgwOA==", got)
	}
}

// Counts follows every way the cache changes: create, replace (disable,
// enable), delete, and another node's writes applied from the change feed.
func TestCounts(t *testing.T) {
	f := newFixture(t)
	want := func(total, enabled int) {
		t.Helper()
		if gt, ge := f.reg.Counts(); gt != total || ge != enabled {
			t.Errorf("Counts %d, %d; want %d, %d", gt, ge, total, enabled)
		}
	}
	want(0, 0)
	a, err := f.reg.Create(ctx, registry.Device{DeviceID: "a"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Create(ctx, registry.Device{DeviceID: "b", Status: registry.Disabled}, ""); err != nil {
		t.Fatal(err)
	}
	want(2, 1)
	a.Status = registry.Disabled
	if a, err = f.reg.Replace(ctx, a, "*", ""); err != nil {
		t.Fatal(err)
	}
	want(2, 0)
	a.Status = registry.Disabled // replaced with the same status: counted once
	if a, err = f.reg.Replace(ctx, a, "*", ""); err != nil {
		t.Fatal(err)
	}
	want(2, 0)
	a.Status = registry.Enabled
	if _, err = f.reg.Replace(ctx, a, "*", ""); err != nil {
		t.Fatal(err)
	}
	want(2, 1)
	if err := f.reg.Delete(ctx, "b", "*", ""); err != nil {
		t.Fatal(err)
	}
	want(1, 1)
	f.reg.Apply("c", &registry.Device{DeviceID: "c", Status: registry.Disabled}, 1<<40)
	want(2, 1)
	f.reg.Apply("c", nil, 1<<41)
	want(1, 1)
}
