package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tether-hub/tether/internal/registry"
)

func TestDecodeBulk(t *testing.T) {
	ops, err := registry.DecodeBulk([]byte(`[{"id":"a","importMode":"create","status":"disabled"},{"id":"b","importMode":"delete","eTag":"x"}]`))
	if err != nil || len(ops) != 2 || ops[0].Device.DeviceID != "a" || ops[0].Device.Status != registry.Disabled || ops[1].ETag != "x" {
		t.Fatalf("%+v %v", ops, err)
	}
	bad := []struct{ body, want string }{
		{`{"id":"a"}`, "JSON array"},
		{`[]`, "1 to 100"},
		{`[` + strings.Repeat(`{"id":"a","importMode":"create"},`, 100) + `{"id":"b"}]`, "has 101"},
		{`[{"id":"a","status":5}]`, "device 0 of the array"},
		{`[1]`, "device 0 of the array"},
		{`[{"id":"a"`, "invalid JSON"},
	}
	for _, b := range bad {
		_, err := registry.DecodeBulk([]byte(b.body))
		if err == nil || !strings.Contains(err.Error(), b.want) || !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%.40s: %v, want %q", b.body, err, b.want)
		}
	}
}

// Each entry succeeds or fails on its own, with IoT Hub's codes.
func TestBulk(t *testing.T) {
	f := newFixture(t)
	f.reg.Create(ctx, registry.Device{DeviceID: "exists"}, "test")
	ops, err := registry.DecodeBulk([]byte(`[
		{"id":"n1","importMode":"create"},
		{"id":"exists","importMode":"create"},
		{"id":"n2","importMode":"Create","status":"disabled"},
		{"id":"missing","importMode":"update","status":"disabled"},
		{"id":"exists","importMode":"updateIfMatchETag","status":"disabled","eTag":"stale"},
		{"id":"exists","importMode":"update","status":"disabled"},
		{"id":"n3","importMode":"createOrUpdate"},
		{"id":"n1","importMode":"delete"},
		{"id":"n1","importMode":"delete"},
		{"id":"x","importMode":"fly"},
		{"id":"bad id with a / in it","importMode":"create"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	res := f.reg.Bulk(ctx, ops, "test")
	got := map[string]int{}
	for _, e := range res.Errors {
		got[e.DeviceID+"/"+strings.Fields(e.ErrorStatus)[0]] = e.ErrorCode
	}
	want := map[int]int{409001: 1, 404001: 2, 412002: 1, 400004: 2}
	counts := map[int]int{}
	for _, e := range res.Errors {
		counts[e.ErrorCode]++
		if e.ErrorStatus == "" {
			t.Errorf("error without a message: %+v", e)
		}
	}
	if res.IsSuccessful || len(res.Errors) != 6 {
		t.Fatalf("result %+v", res)
	}
	for code, n := range want {
		if counts[code] != n {
			t.Errorf("code %d: %d errors, want %d (%v)", code, counts[code], n, got)
		}
	}
	for id, status := range map[string]registry.Status{"n2": registry.Disabled, "exists": registry.Disabled, "n3": registry.Enabled} {
		if d, ok := f.reg.Device(id); !ok || d.Status != status {
			t.Errorf("%s: %+v %v", id, d.Status, ok)
		}
	}
	if _, ok := f.reg.Device("n1"); ok {
		t.Error("n1 not deleted")
	}
}
