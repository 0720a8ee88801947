package registry_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
	"github.com/tether-hub/tether/internal/sas"
)

func TestPolicyWrites(t *testing.T) {
	store := memstore.New()
	var changes []registry.PolicyChange
	reg, err := registry.New(ctx, store, registry.Options{HubName: hub,
		OnPolicyChange: func(c registry.PolicyChange) { changes = append(changes, c) }})
	if err != nil {
		t.Fatal(err)
	}
	if !reg.CreatedDefaultPolicies() {
		t.Fatal("a new store: CreatedDefaultPolicies is false")
	}

	p, err := reg.CreatePolicy(ctx, registry.Policy{Name: "ops.team-1", Rights: registry.RegistryRead | registry.ServiceConnect}, "iothubowner")
	if err != nil {
		t.Fatal(err)
	}
	if p.PrimaryKey == "" || p.SecondaryKey == "" || p.PrimaryKey == p.SecondaryKey {
		t.Fatalf("generated keys: %+v", p)
	}
	_, err = reg.CreatePolicy(ctx, registry.Policy{Name: "OPS.TEAM-1", Rights: registry.RegistryRead}, "")
	wantCode(t, err, registry.CodePolicyAlreadyExists, http.StatusConflict, registry.ErrExists)

	for _, bad := range []registry.Policy{
		{Name: "", Rights: registry.RegistryRead},
		{Name: "-x", Rights: registry.RegistryRead},
		{Name: "a;b", Rights: registry.RegistryRead},
		{Name: strings.Repeat("a", 65), Rights: registry.RegistryRead},
		{Name: "norights"},
		{Name: "badkey", Rights: registry.RegistryRead, PrimaryKey: "not base64!"},
		{Name: "shortkey", Rights: registry.RegistryRead, SecondaryKey: "c2hvcnQ="},
	} {
		_, err := reg.CreatePolicy(ctx, bad, "")
		wantCode(t, err, registry.CodeArgumentInvalid, http.StatusBadRequest, registry.ErrInvalid)
	}

	// Given keys are kept.
	key := registry.NewKey()
	p2, err := reg.CreatePolicy(ctx, registry.Policy{Name: "given", Rights: registry.DeviceConnect, PrimaryKey: key}, "")
	if err != nil || p2.PrimaryKey != key {
		t.Fatalf("create with a key: %+v %v", p2, err)
	}

	// Rights change, keys stay.
	up, err := reg.UpdatePolicyRights(ctx, "ops.team-1", registry.RegistryRead, "")
	if err != nil || up.Rights != registry.RegistryRead || up.PrimaryKey != p.PrimaryKey {
		t.Fatalf("update: %+v %v", up, err)
	}
	_, err = reg.UpdatePolicyRights(ctx, "nope", registry.RegistryRead, "")
	wantCode(t, err, registry.CodePolicyNotFound, http.StatusNotFound, registry.ErrNotFound)

	// The last policy with all rights cannot lose them or go.
	_, err = reg.UpdatePolicyRights(ctx, "iothubowner", registry.RegistryRead, "")
	wantCode(t, err, registry.CodeArgumentInvalid, http.StatusBadRequest, registry.ErrInvalid)
	wantCode(t, reg.DeletePolicy(ctx, "iothubowner", ""), registry.CodeArgumentInvalid, http.StatusBadRequest, registry.ErrInvalid)
	if _, err := reg.CreatePolicy(ctx, registry.Policy{Name: "owner2", Rights: registry.AllRights}, ""); err != nil {
		t.Fatal(err)
	}
	if err := reg.DeletePolicy(ctx, "iothubowner", "owner2"); err != nil {
		t.Fatalf("delete the owner once another has all rights: %v", err)
	}
	wantCode(t, reg.DeletePolicy(ctx, "iothubowner", ""), registry.CodePolicyNotFound, http.StatusNotFound, registry.ErrNotFound)

	// A restart does not bring deleted default policies back.
	reg2, err := registry.New(ctx, store, registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reg2.Policy("iothubowner"); ok || reg2.CreatedDefaultPolicies() {
		t.Fatal("restart re-created the deleted iothubowner policy")
	}
	if len(reg2.Policies()) != len(reg.Policies()) {
		t.Fatalf("restart: %d policies, before %d", len(reg2.Policies()), len(reg.Policies()))
	}

	// The limit.
	for i := len(reg.Policies()); i < registry.MaxPolicies; i++ {
		if _, err := reg.CreatePolicy(ctx, registry.Policy{Name: "p" + string(rune('a'+i)), Rights: registry.RegistryRead}, ""); err != nil {
			t.Fatal(err)
		}
	}
	_, err = reg.CreatePolicy(ctx, registry.Policy{Name: "onetoomany", Rights: registry.RegistryRead}, "")
	wantCode(t, err, registry.CodeArgumentInvalid, http.StatusBadRequest, registry.ErrInvalid)

	var ops []string
	for _, c := range changes {
		ops = append(ops, string(c.Op)+":"+c.Name)
	}
	if got := strings.Join(ops[:5], " "); got != "created:ops.team-1 created:given updated:ops.team-1 created:owner2 deleted:iothubowner" {
		t.Errorf("changes: %s", got)
	}
}

// Renewing one key keeps the other working: the rotation without
// downtime.
func TestRenewPolicyKey(t *testing.T) {
	f := newFixture(t)
	before, _ := f.reg.Policy("service")
	token := func(key string) string {
		tok, err := sas.Sign(hub, key, "service", t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	oldPrimary, oldSecondary := token(before.PrimaryKey), token(before.SecondaryKey)

	after, err := f.reg.RenewPolicyKey(ctx, "service", registry.PrimarySlot, "iothubowner")
	if err != nil {
		t.Fatal(err)
	}
	if after.PrimaryKey == before.PrimaryKey || after.SecondaryKey != before.SecondaryKey {
		t.Fatalf("renew primary: %+v → %+v", before, after)
	}
	if _, err := f.reg.Authorize(oldSecondary, registry.ServiceConnect, t0); err != nil {
		t.Errorf("the secondary key stopped working: %v", err)
	}
	if _, err := f.reg.Authorize(oldPrimary, registry.ServiceConnect, t0); !errors.Is(err, registry.ErrUnauthorized) {
		t.Errorf("the renewed primary key still works: %v", err)
	}
	if _, err := f.reg.Authorize(token(after.PrimaryKey), registry.ServiceConnect, t0); err != nil {
		t.Errorf("the new primary key: %v", err)
	}

	swapped, err := f.reg.RenewPolicyKey(ctx, "service", registry.SwapSlots, "")
	if err != nil || swapped.PrimaryKey != after.SecondaryKey || swapped.SecondaryKey != after.PrimaryKey {
		t.Fatalf("swap: %+v %v", swapped, err)
	}
	both, err := f.reg.RenewPolicyKey(ctx, "service", registry.BothSlots, "")
	if err != nil || both.PrimaryKey == swapped.PrimaryKey || both.SecondaryKey == swapped.SecondaryKey {
		t.Fatalf("both: %+v %v", both, err)
	}
	sec, err := f.reg.RenewPolicyKey(ctx, "service", registry.SecondarySlot, "")
	if err != nil || sec.PrimaryKey != both.PrimaryKey || sec.SecondaryKey == both.SecondaryKey {
		t.Fatalf("secondary: %+v %v", sec, err)
	}
	// Stored, not only cached.
	reg2, err := registry.New(ctx, f.store, registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := reg2.Policy("service"); p != sec {
		t.Fatalf("after restart %+v, want %+v", p, sec)
	}

	_, err = f.reg.RenewPolicyKey(ctx, "service", "tertiary", "")
	wantCode(t, err, registry.CodeArgumentInvalid, http.StatusBadRequest, registry.ErrInvalid)
	_, err = f.reg.RenewPolicyKey(ctx, "nope", registry.PrimarySlot, "")
	wantCode(t, err, registry.CodePolicyNotFound, http.StatusNotFound, registry.ErrNotFound)
}

// ReloadPolicies picks up what another writer stored.
func TestReloadPolicies(t *testing.T) {
	f := newFixture(t)
	other, err := registry.New(ctx, f.store, registry.Options{HubName: hub})
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := other.RenewPolicyKey(ctx, "device", registry.PrimarySlot, "")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := f.reg.Policy("device"); p == renewed {
		t.Fatal("the cache saw the other writer without a reload")
	}
	if err := f.reg.ReloadPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.reg.Policy("device"); p != renewed {
		t.Fatalf("after reload %+v, want %+v", p, renewed)
	}
}

func TestParseKeySlot(t *testing.T) {
	for in, want := range map[string]registry.KeySlot{"primary": registry.PrimarySlot, " Secondary": registry.SecondarySlot, "BOTH": registry.BothSlots, "swap": registry.SwapSlots} {
		if got, err := registry.ParseKeySlot(in); err != nil || got != want {
			t.Errorf("ParseKeySlot(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := registry.ParseKeySlot("first"); err == nil {
		t.Error("ParseKeySlot(first) accepted")
	}
}
